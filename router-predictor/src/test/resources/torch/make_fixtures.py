"""Writes the .pt fixtures of TorchFileTest and SglangDumpTest with a real torch.save (Debian's python3-torch:
`apt-get install python3-torch`, then `/usr/bin/python3 make_fixtures.py` in this folder). The files are committed;
this script is kept so they can be made again and read. It mimics SGLang's expert-distribution recorder
(python/sglang/srt/eplb/expert_distribution.py): the dicts its `stat` and `per_token` modes pass to torch.save,
on a small model of 4 decoder layers (layer 0 dense), 8 logical experts in 10 physical slots, top-2.

Beside each dump it writes what the import must yield, computed here independently: the moe-trace/1 lines and
the summed load counts."""
import collections
import json
import os

import torch

LAYERS, LOGICAL, PHYSICAL, TOPK, PAD = 4, 8, 10, 2, 8
g = torch.Generator().manual_seed(7)

# physical -> logical per layer: every logical expert once, then two replicas of random experts; stored as a view
# (column slice of a wider tensor) so that the reader must honour storage offset and strides
wide = torch.zeros((LAYERS, PHYSICAL + 1), dtype=torch.int64)
for l in range(LAYERS):
    perm = torch.randperm(LOGICAL, generator=g)
    extra = torch.randint(0, LOGICAL, (PHYSICAL - LOGICAL,), generator=g)
    wide[l, 1:] = torch.cat([perm, extra])
p2l = wide[:, 1:]
assert p2l.storage_offset() == 1 and not p2l.is_contiguous()


def physical_of(l, logical):
    slots = [p for p in range(PHYSICAL) if int(p2l[l, p]) == logical]
    return slots[int(torch.randint(0, len(slots), (1,), generator=g))]


def forward_pass(pass_id, tokens, extend_seq_lens):
    topk = torch.full((LAYERS, tokens, PAD), -1, dtype=torch.int32)
    for l in range(1, LAYERS):  # layer 0 is dense: SGLang never records it, so it stays -1
        for t in range(tokens):
            chosen = torch.randperm(LOGICAL, generator=g)[:TOPK]
            for k in range(TOPK):
                topk[l, t, k] = physical_of(l, int(chosen[k]))
    count = torch.zeros((LAYERS, PHYSICAL), dtype=torch.int32)
    for l in range(LAYERS):
        for v in topk[l].flatten().tolist():
            if v >= 0:
                count[l, v] += 1
    return dict(forward_pass_id=pass_id, rank=0, gatherer_key="primary",
                input_ids=[int(x) for x in torch.randint(0, 1000, (tokens,), generator=g)],
                positions=list(range(tokens)), extend_seq_lens=extend_seq_lens, forward_mode=1 if extend_seq_lens else 2,
                topk_ids_of_layer=topk, misc_objects=[], global_physical_count=count)


records = [forward_pass(0, 5, [3, 2]), forward_pass(1, 2, None), forward_pass(2, 4, [4])]
torch.save(dict(records=records, last_physical_to_logical_map=p2l), "sglang-per_token.pt")

# the import, computed independently: one sequence per prefill request, one per decode token; dense layer 0 dropped
lines = [dict(format="moe-trace/1", model="", layers=LAYERS - 1, experts=LOGICAL, top_k=TOPK, source="")]
for r in records:
    lens = r["extend_seq_lens"] or [1] * len(r["input_ids"])
    start = 0
    for i, n in enumerate(lens):
        experts = []
        for t in range(start, start + n):
            experts.append([[int(p2l[l, int(r["topk_ids_of_layer"][l, t, k])]) for k in range(TOPK)] for l in range(1, LAYERS)])
        lines.append(dict(tokens=r["input_ids"][start:start + n], experts=experts))
        start += n
with open("sglang-per_token.expected.jsonl", "w") as f:
    for x in lines:
        f.write(json.dumps(x) + "\n")

# stat mode: logical counts per buffered step [steps, layers, logical], summed over ranks; layer 0 all zero
logical_count = torch.zeros((3, LAYERS, LOGICAL), dtype=torch.int32)
logical_count[:, 1:, :] = torch.randint(0, 50, (3, LAYERS - 1, LOGICAL), generator=g, dtype=torch.int32)
torch.save(dict(rank=0, logical_count=logical_count, average_utilization_rate_over_window=None), "sglang-stat.pt")
with open("sglang-stat.expected.json", "w") as f:
    json.dump(dict(load=logical_count.sum(dim=0)[1:].tolist()), f)

# every kind of value the reader builds
misc = collections.OrderedDict()
misc["f32"] = torch.tensor([[1.5, -2.25], [3.0, 1e-3]], dtype=torch.float32)
misc["bf16"] = torch.tensor([1.0, -0.5, 3.0], dtype=torch.bfloat16)
misc["f16"] = torch.tensor([0.25, 65504.0], dtype=torch.float16)
misc["bool"] = torch.tensor([True, False, True])
misc["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
misc["transposed"] = torch.arange(6, dtype=torch.int64).reshape(2, 3).t()
misc["shared_a"] = wide[0]
misc["shared_b"] = wide[1]
misc["scalar"] = torch.tensor(42, dtype=torch.int32)
misc["big"] = 2 ** 40 + 3
misc["neg"] = -300000
misc["pi"] = 3.141592653589793
misc["text"] = "prefill \u00e9"
misc["none"] = None
misc["flag"] = True
misc["nested"] = [1, [2, (3, "x")], {"k": [None, False]}]
torch.save(misc, "misc.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


torch.save({"records": [Evil()]}, "evil.pt")
print("wrote", sorted(f for f in os.listdir(".") if f.endswith((".pt", ".json", ".jsonl"))))
