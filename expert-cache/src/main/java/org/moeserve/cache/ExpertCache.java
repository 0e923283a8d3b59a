package org.moeserve.cache;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import org.moeserve.cache.policy.EvictionPolicy;
import org.moeserve.cache.transfer.Link;
import org.moeserve.units.LinkModel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The fast tier: a byte budget of expert slots (off-heap memory standing in for GPU memory), filled from the slow
 * tier over a modelled {@link Link}. {@link #acquire} returns an expert's weights in fast memory and pins them,
 * stalling if they must first be loaded; {@link #prefetch} starts loading an expert a predictor expects, at a
 * priority below every demand load. The eviction policy decides which expert leaves.
 *
 * <p>Time: the link schedule is kept in the {@link Clock}'s time: a transfer is ready at
 * max(now, link free) + latency + bytes / bandwidth, and the bytes are really copied on a copier thread meanwhile.
 * With {@link Clock#SYSTEM} that is wall time (what {@code moe generate --expert-budget} runs); with a virtual
 * clock and no copying, the same code replays traces ({@code moe cache-sim}).
 *
 * <p>Glossary: <em>resident</em> = in a slot and loaded; <em>in flight</em> = in a slot, transfer not finished;
 * <em>pinned</em> = in use by a running layer (cannot leave); <em>fixed</em> = pinned by the policy for good.
 */
public final class ExpertCache implements AutoCloseable {

    /**
     * @param budgetBytes fast-tier bytes; slots = budget / expertBytes, at least 1 beyond the policy's fixed experts
     * @param copyBytes   false to only account (trace replay): no memory is allocated, nothing is copied
     * @param readers     0: the link is modelled (a copy is ready at its modelled time); n > 0: the source is a real
     *                    slow tier (a disk) read by n threads at once, and a copy is ready when its bytes are; the
     *                    link model (measured) then only guides decisions (deadlines, priorities)
     * @param modelledReaders the schedule the link model keeps ({@link Link#Link(LinkModel, int)}): 0 a serial link,
     *                    n > 0 a disk tier's n reader threads (a replay of the disk tier gives the tier's readers)
     */
    public record Config(long budgetBytes, long expertBytes, LinkModel link, boolean copyBytes, int readers, int modelledReaders) {
        public Config(long budgetBytes, long expertBytes, LinkModel link, boolean copyBytes) {
            this(budgetBytes, expertBytes, link, copyBytes, 0, 0);
        }

        /**
         * A real tier guided by a serial link model: measured live (bench/analysis.md, disk tier), guidance by the
         * readers model let more prefetches through and raised the hit rate, but not the decode speed.
         */
        public Config(long budgetBytes, long expertBytes, LinkModel link, boolean copyBytes, int readers) {
            this(budgetBytes, expertBytes, link, copyBytes, readers, 0);
        }

        public Config {
            if (readers < 0) throw new IllegalArgumentException("readers is " + readers + " but must be >= 0");
            if (modelledReaders < 0) throw new IllegalArgumentException("modelled readers is " + modelledReaders + " but must be >= 0");
            if (readers > 0 && !copyBytes) throw new IllegalArgumentException("a real slow tier (readers > 0) copies bytes");
            if (expertBytes <= 0) throw new IllegalArgumentException("expert size is " + expertBytes + " bytes but must be > 0");
            if (budgetBytes < expertBytes) {
                throw new IllegalArgumentException("expert budget is " + budgetBytes + " bytes but must hold at least one "
                        + "expert (" + expertBytes + " bytes)");
            }
        }

        public int slots() { return (int) Math.min(Integer.MAX_VALUE, budgetBytes / expertBytes); }
    }

    /** Copy states: the bytes are copied by whoever claims the copy first (the copier thread or a waiting layer). */
    private static final int PENDING = 0, COPYING = 1, COPIED = 2, CANCELLED = 3;

    private static final class Entry {
        final ExpertKey key;
        final int slot;
        Link.Transfer transfer;   // null once loaded
        final java.util.concurrent.atomic.AtomicInteger copy = new java.util.concurrent.atomic.AtomicInteger(COPIED);
        int pins;
        boolean prefetched, used, fixed, evictable, reserved;

        Entry(ExpertKey key, int slot) {
            this.key = key;
            this.slot = slot;
        }
    }

    private final Config config;
    private final ExpertSource source;
    private final EvictionPolicy policy;
    private final Clock clock;
    private final Link link;
    private final int slots;
    private final Arena arena;
    private final MemorySegment memory;
    private final Slots external; // slots outside this JVM's memory (a GPU's), or null
    private final ExecutorService copier;
    private final boolean real; // a real slow tier: arrival is the copy, not the modelled time
    private final Map<ExpertKey, Entry> entries = new HashMap<>();
    private final List<Entry> inFlight = new ArrayList<>();                 // transfers not yet settled
    private final Map<Integer, List<Entry>> unusedPrefetches = new HashMap<>(); // layer -> prefetched, not yet used
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    private long tick;
    private long accesses, hits, late, misses, demandBytes, prefetchBytes, issued, used, wasted, cancelled, wastedBytes, skipped;
    private final AtomicLong stallNanos = new AtomicLong();

    /**
     * Where slots live when they are not host memory (a GPU's memory): the cache keeps the books (which expert is in
     * which slot, what is pinned, what the policy evicts) and asks the slots to fill one. {@link #acquire} then
     * returns null; {@link #acquireSlot} gives the slot index the caller maps to its own memory.
     */
    public interface Slots {
        /** Puts expert k's bytes into slot {@code slot}; returns when they are there. Any thread may call it. */
        void fill(ExpertKey k, int slot);
    }

    public ExpertCache(Config config, ExpertSource source, EvictionPolicy policy, Clock clock) {
        this(config, source, policy, clock, null);
    }

    /** A cache whose slots are {@code external} (null: host memory, allocated here when the config copies bytes). */
    public ExpertCache(Config config, ExpertSource source, EvictionPolicy policy, Clock clock, Slots external) {
        this.config = config;
        this.external = external;
        this.source = source;
        this.policy = policy;
        this.clock = clock;
        this.link = new Link(config.link(), config.modelledReaders());
        this.slots = config.slots();
        this.real = config.readers() > 0;
        int fixed = policy.pinned().size();
        if (slots < fixed + 1) {
            throw new IllegalArgumentException("expert budget holds " + slots + " experts but the " + policy.name()
                    + " policy pins " + fixed + " and at least one slot must stay free for the rest; raise the budget");
        }
        for (int i = 0; i < slots; i++) free.add(i);
        if (config.copyBytes()) {
            if (source == null && external == null) throw new IllegalArgumentException("a copying cache needs an expert source");
            arena = external == null ? Arena.ofShared() : null;
            // page-aligned: aligned direct reads land in a slot with no copy
            memory = external == null ? arena.allocate(slots * config.expertBytes(), 4096) : null;
            // readers take the most urgent copy first (priority = layers ahead; 0 = demand), then the oldest
            int n = Math.max(1, config.readers());
            copier = new java.util.concurrent.ThreadPoolExecutor(n, n, 0, java.util.concurrent.TimeUnit.SECONDS,
                    new java.util.concurrent.PriorityBlockingQueue<>(),
                    r -> Thread.ofPlatform().daemon().name("moe-expert-copy").unstarted(r));
        } else {
            arena = null;
            memory = null;
            copier = null;
        }
        // static pinning: fixed experts are loaded before serving starts (not counted as traffic)
        for (ExpertKey k : policy.pinned()) {
            Entry e = new Entry(k, free.poll());
            e.fixed = true;
            if (config.copyBytes()) fill(k, e.slot);
            entries.put(k, e);
        }
    }

    public int slots() { return slots; }

    public EvictionPolicy policy() { return policy; }

    public Config config() { return config; }

    private MemorySegment slice(int slot) { return memory.asSlice(slot * config.expertBytes(), config.expertBytes()); }

    private void fill(ExpertKey k, int slot) {
        if (external != null) external.fill(k, slot);
        else source.copyTo(k, slice(slot));
    }

    /**
     * Pins expert k in fast memory and returns its bytes (null when not copying, or when the slots are not host
     * memory), waiting for its transfer if it is not loaded yet. Pair with {@link #release}.
     */
    public MemorySegment acquire(ExpertKey k) {
        int slot = acquireSlot(k);
        return memory == null ? null : slice(slot);
    }

    /** As {@link #acquire}, returning the slot index (for {@link Slots} outside host memory). Pair with {@link #release}. */
    public int acquireSlot(ExpertKey k) {
        Entry e;
        long readyAt;
        long t0 = clock.nanoTime();
        synchronized (this) {
            long now = clock.nanoTime();
            settle(now);
            e = entries.get(k);
            accesses++;
            // the policy hears of the access before it picks a victim for it: a new layer's first miss is then
            // judged from that layer (its distances and groups), not from the layer before
            policy.onAccess(k, tick++);
            if (e == null) {
                misses++;
                e = load(k, 0, now, false);
            } else if (e.transfer != null && !arrived(e, now)) {
                late++;
                link.promote(e.transfer, 0, now);
            } else {
                hits++;
            }
            if (e.prefetched && !e.used) used++;
            e.used = true;
            if (e.reserved) e.reserved = false; // the reservation's pin becomes this use's
            else e.pins++;
            refresh(e);
            readyAt = e.transfer == null ? now : e.transfer.readyAt();
        }
        copyNow(e); // needed now: copy here rather than wait for the copier thread to get to it
        if (real) { // a read in flight on a reader thread: milliseconds, so park rather than spin
            while (e.copy.get() != COPIED) java.util.concurrent.locks.LockSupport.parkNanos(20_000);
        } else {
            clock.waitUntil(readyAt);
            while (e.copy.get() != COPIED) Thread.onSpinWait(); // the copier is mid-copy: microseconds
        }
        stallNanos.addAndGet(clock.nanoTime() - t0);
        return e.slot;
    }

    private final List<Entry> reservations = new ArrayList<>();

    /**
     * The running layer's router has chosen these experts: those resident now stay until {@link #acquire}d. A layer
     * acquires its experts one at a time, and without this a miss early in the layer could evict an expert the same
     * layer is about to use (to every policy it looks like the one used longest ago, or next needed a whole cycle
     * away). Each reservation is consumed by the key's next acquire; any left over when the next layer reserves (a
     * layer that failed midway) are dropped then.
     */
    public synchronized void reserve(java.util.Collection<ExpertKey> keys) {
        for (Entry e : reservations) {
            if (!e.reserved) continue;
            e.reserved = false;
            e.pins--;
            refresh(e);
        }
        reservations.clear();
        for (ExpertKey k : keys) {
            Entry e = entries.get(k);
            if (e == null || e.reserved) continue;
            e.reserved = true;
            e.pins++;
            reservations.add(e);
            refresh(e);
        }
    }

    /** A queued copy: ordered by priority (layers ahead), then by arrival. */
    private final class Copy implements Runnable, Comparable<Copy> {
        final Entry e;
        final int priority;
        final long order;

        Copy(Entry e, int priority, long order) {
            this.e = e;
            this.priority = priority;
            this.order = order;
        }

        @Override
        public void run() { copyNow(e); }

        @Override
        public int compareTo(Copy o) {
            return priority != o.priority ? Integer.compare(priority, o.priority) : Long.compare(order, o.order);
        }
    }

    private long copies; // copies queued, for their order (guarded by this)

    /** Copies e's bytes if nobody has started to. */
    private void copyNow(Entry e) {
        if (e.copy.compareAndSet(PENDING, COPYING)) {
            try {
                fill(e.key, e.slot);
            } finally {
                e.copy.set(COPIED);
            }
        }
    }

    public synchronized void release(ExpertKey k) {
        Entry e = entries.get(k);
        if (e == null || e.pins == 0) throw new IllegalStateException("expert " + k + " released but not acquired");
        e.pins--;
        settle(clock.nanoTime());
        refresh(e);
        notifyAll();
    }

    /**
     * Starts loading expert k, expected {@code distance} layers from now (priority: lower first, after demand).
     * Returns false if it is already resident or in flight, or if the policy would rather keep what it has.
     */
    public synchronized boolean prefetch(ExpertKey k, int distance) { return prefetch(k, distance, Long.MAX_VALUE); }

    /**
     * As {@link #prefetch(ExpertKey, int)}, but only if the link can deliver it by {@code deadline} (clock time):
     * a prefetch that would arrive after its layer has started only holds the link up for demand loads.
     */
    public synchronized boolean prefetch(ExpertKey k, int distance, long deadline) {
        return prefetch(k, distance, deadline, Double.NaN, false);
    }

    /**
     * As {@link #prefetch(ExpertKey, int, long)}, telling the policy the probability that k is used (NaN: unknown).
     * With {@code lateIfIdle}, a prefetch that cannot arrive by its deadline is still made when the link is idle:
     * a load that starts now shortens the stall it would otherwise cause, and delays nothing.
     */
    public synchronized boolean prefetch(ExpertKey k, int distance, long deadline, double probability, boolean lateIfIdle) {
        if (Double.isNaN(probability)) policy.onPredicted(k, tick);
        else policy.onPredicted(k, tick, probability);
        if (entries.containsKey(k)) return false;
        long now = clock.nanoTime();
        settle(now);
        if (deadline != Long.MAX_VALUE && link.projectedReady(config.expertBytes(), Math.max(1, distance), now) > deadline
                && !(lateIfIdle && link.idle(now))) {
            skipped++;
            return false;
        }
        Entry e = load(k, Math.max(1, distance), now, true);
        if (e == null) return false;
        e.prefetched = true;
        unusedPrefetches.computeIfAbsent(k.layer(), x -> new ArrayList<>()).add(e);
        issued++;
        return true;
    }

    /**
     * Cancels the prefetches for layer {@code layer} that were not used and have not started moving: the layer
     * has run, so they are stale. Their slots and link time are given back.
     */
    public synchronized void cancelStale(int layer) {
        List<Entry> pending = unusedPrefetches.remove(layer);
        if (pending == null) return;
        long now = clock.nanoTime();
        for (Entry e : pending) {
            if (entries.get(e.key) != e || e.used) continue; // gone already, or used: not stale
            boolean stale;
            if (real) { // stale while no reader has begun it; the modelled schedule, which only guides, follows
                stale = e.pins == 0 && e.transfer != null && e.copy.compareAndSet(PENDING, CANCELLED);
                if (stale) link.cancel(e.transfer, now);
            } else {
                stale = e.pins == 0 && e.transfer != null && !link.started(e.transfer, now)
                        && (e.copy.get() == COPIED && !config.copyBytes() || e.copy.compareAndSet(PENDING, CANCELLED))
                        && link.cancel(e.transfer, now);
            }
            if (stale) {
                entries.remove(e.key);
                inFlight.remove(e);
                setEvictable(e, false);
                policy.onEvict(e.key);
                free.add(e.slot);
                cancelled++;
                prefetchBytes -= config.expertBytes();
            }
        }
    }

    /** Transfers that have arrived (and been copied) become loaded; loaded, unpinned experts may leave. */
    private void settle(long now) {
        for (int i = inFlight.size() - 1; i >= 0; i--) {
            Entry e = inFlight.get(i);
            if (e.transfer != null && arrived(e, now)) {
                e.transfer = null;
                inFlight.set(i, inFlight.getLast());
                inFlight.removeLast();
                refresh(e);
            }
        }
    }

    /** Whether e's bytes are in its slot: copied, and (a modelled link) its modelled time has come. */
    private boolean arrived(Entry e, long now) {
        return e.copy.get() == COPIED && (real || e.transfer == null || e.transfer.readyAt() <= now);
    }

    /** Tells the policy whether e may leave now: loaded, not pinned, not fixed. */
    private void refresh(Entry e) { setEvictable(e, e.pins == 0 && !e.fixed && e.transfer == null && entries.get(e.key) == e); }

    private void setEvictable(Entry e, boolean can) {
        if (can == e.evictable) return;
        e.evictable = can;
        if (can) policy.onEvictable(e.key);
        else policy.onUnevictable(e.key);
    }

    /** Reserves a slot for k (evicting if needed) and schedules its transfer; null if a prefetch found no room. */
    private Entry load(ExpertKey k, int priority, long now, boolean prefetch) {
        Integer slot = free.poll();
        while (slot == null) {
            settle(now);
            ExpertKey victim = policy.victim(k, prefetch, tick);
            if (victim != null) {
                slot = evict(victim);
            } else if (prefetch) {
                return null;
            } else {
                // every slot is pinned by running layers or still loading: wait for a release or a transfer
                try {
                    long soonest = Long.MAX_VALUE;
                    for (Entry e : inFlight) if (e.transfer != null) soonest = Math.min(soonest, e.transfer.readyAt());
                    if (clock != Clock.SYSTEM) { // replay: no other thread will release; jump to the next transfer
                        if (soonest == Long.MAX_VALUE) {
                            throw new IllegalStateException("all " + slots + " expert slots are pinned; the budget must "
                                    + "hold more experts than one layer uses at once");
                        }
                        clock.waitUntil(Math.max(soonest, now));
                    } else {
                        wait(1);
                    }
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for a free expert slot", ex);
                }
                now = clock.nanoTime();
                slot = free.poll();
            }
        }
        Entry e = new Entry(k, slot);
        e.transfer = link.submit(config.expertBytes(), priority, now);
        inFlight.add(e);
        if (config.copyBytes()) {
            e.copy.set(PENDING);
            copier.execute(new Copy(e, priority, copies++));
        }
        if (prefetch) prefetchBytes += config.expertBytes();
        else demandBytes += config.expertBytes();
        entries.put(k, e);
        policy.onLoad(k, tick);
        return e;
    }

    private int evict(ExpertKey k) {
        Entry e = entries.get(k);
        setEvictable(e, false);
        entries.remove(k);
        policy.onEvict(k);
        if (e.prefetched && !e.used) {
            wasted++;
            wastedBytes += config.expertBytes();
        }
        return e.slot;
    }

    /** Nanoseconds until the link has finished everything on it or queued (0: idle). */
    public synchronized long linkBacklog() {
        long now = clock.nanoTime();
        return Math.max(0, link.freeAt(now) - now);
    }

    /** Link time one expert's load takes. */
    public long loadNanos() { return config.link().nanosFor(config.expertBytes()); }

    public synchronized boolean isResident(ExpertKey k) {
        Entry e = entries.get(k);
        return e != null && (e.transfer == null || arrived(e, clock.nanoTime()));
    }

    public synchronized int residentCount() { return entries.size(); }

    /** Zeroes the counters (not the contents): to measure a steady state after a warm-up. */
    public synchronized void resetStats() {
        accesses = hits = late = misses = demandBytes = prefetchBytes = issued = used = wasted = cancelled = wastedBytes = skipped = 0;
        stallNanos.set(0);
        for (Entry e : entries.values()) e.used = e.used || !e.prefetched;
    }

    public synchronized CacheStats stats() {
        return new CacheStats(accesses, hits, late, misses, stallNanos.get(), demandBytes, prefetchBytes, issued, used,
                wasted, cancelled, skipped, wastedBytes, link.busyNanos());
    }

    /** Meters moe.cache.* and moe.prefetch.* on the registry (tags: policy). */
    public void bindTo(MeterRegistry registry) {
        String p = policy.name();
        FunctionCounter.builder("moe.cache.accesses", this, c -> c.stats().hits()).tag("result", "hit").tag("policy", p).register(registry);
        FunctionCounter.builder("moe.cache.accesses", this, c -> c.stats().late()).tag("result", "late").tag("policy", p).register(registry);
        FunctionCounter.builder("moe.cache.accesses", this, c -> c.stats().misses()).tag("result", "miss").tag("policy", p).register(registry);
        FunctionCounter.builder("moe.cache.stall.seconds", this, c -> c.stats().stallNanos() / 1e9).tag("policy", p).register(registry);
        FunctionCounter.builder("moe.cache.bytes", this, c -> c.stats().demandBytes()).tag("kind", "demand").tag("policy", p).register(registry);
        FunctionCounter.builder("moe.cache.bytes", this, c -> c.stats().prefetchBytes()).tag("kind", "prefetch").tag("policy", p).register(registry);
        FunctionCounter.builder("moe.prefetch.issued", this, c -> c.stats().prefetchIssued()).tag("policy", p).register(registry);
        FunctionCounter.builder("moe.prefetch.used", this, c -> c.stats().prefetchUsed()).tag("policy", p).register(registry);
        FunctionCounter.builder("moe.prefetch.wasted.bytes", this, c -> c.stats().wastedBytes()).tag("policy", p).register(registry);
        Gauge.builder("moe.cache.resident", this, ExpertCache::residentCount).tag("policy", p).register(registry);
    }

    @Override
    public void close() {
        if (copier != null) {
            copier.shutdownNow();
            try { // a reader may be mid-read into a slot: let it finish before the slots go
                copier.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (arena != null) arena.close();
        if (source instanceof AutoCloseable owned) { // the cache owns a source it must close (the disk tier's files)
            try {
                owned.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing the expert source failed: " + e.getMessage(), e);
            }
        }
    }
}
