package org.moeserve.runtime.serve;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real chat templates of the families we serve (as published in their tokenizer_config.json), rendered exactly. */
class ChatTemplateTest {
    static final List<Map<String, Object>> CHAT = List.of(
            Map.of("role", "user", "content", "Hi"), Map.of("role", "assistant", "content", "Hello."),
            Map.of("role", "user", "content", "Who are you?"));

    // Mistral/Mixtral-Instruct v0.1
    static final String MIXTRAL = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
            + "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
            + "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
            + "message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user "
            + "and assistant roles are supported!') }}{% endif %}{% endfor %}";

    // Qwen (ChatML)
    static final String QWEN = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
            + "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    @Test
    void mixtralTemplate() {
        assertEquals("<s>[INST] Hi [/INST]Hello.</s>[INST] Who are you? [/INST]",
                ChatTemplate.parse(MIXTRAL).render(CHAT, "<s>", "</s>", true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.parse(MIXTRAL).render(List.of(Map.of("role", "assistant", "content", "x")), "<s>", "</s>", true));
        assertTrue(e.getMessage().contains("must alternate"), e.getMessage());
    }

    @Test
    void qwenTemplate() {
        assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                        + "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n",
                ChatTemplate.parse(QWEN).render(CHAT, "", "<|im_end|>", true));
    }

    @Test
    void whitespaceControlSetFiltersAndTests() {
        String t = "{%- set sep = ' | ' -%}\n  {%- for m in messages -%}\n {{ m.role | upper }}{{ sep if false else sep }}"
                + "{%- if not loop.last %}{{ m['content'] | trim }};{% endif -%}\n{% endfor %}{% if foo is defined %}no{% endif %}"
                + "{{ messages | length }}";
        // 'x if c else y' is not in the subset: it must fail loudly, not render something else
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.parse(t));
        String ok = "{%- set sep = ' | ' -%}\n  {%- for m in messages -%}\n {{ m.role | upper ~ sep }}"
                + "{%- if not loop.last %}{{ m['content'] | trim }};{% endif -%}\n{% endfor %}{% if foo is defined %}no{% endif %}"
                + "{{ messages | length }}";
        assertEquals("USER | Hi;ASSISTANT | Hello.;USER | 3", ChatTemplate.parse(ok).render(CHAT, "", "", false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplate.parse("{% macro x() %}"));
        assertTrue(e.getMessage().contains("{% macro %} is not supported"), e.getMessage());
    }
}
