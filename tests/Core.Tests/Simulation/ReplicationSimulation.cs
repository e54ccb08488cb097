using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Geo.Core.Clock;
using Geo.Core.Versioning;

namespace Geo.Core.Tests.Simulation;

/// <summary>Knobs of one simulated run; the defaults are what <c>./geo test</c> runs per seed.</summary>
public sealed record SimulationOptions
{
    public int Regions { get; init; } = 3;

    /// <summary>Client writes (documents and counter increments) spread over the fault phase.</summary>
    public int Writes { get; init; } = 40;

    /// <summary>Document keys (few, so regions write the same key concurrently).</summary>
    public int Keys { get; init; } = 3;

    public int Counters { get; init; } = 2;

    /// <summary>Changes per batch and batches unacknowledged per stream (the replicator's BatchSize and Window).</summary>
    public int BatchSize { get; init; } = 3;

    public int Window { get; init; } = 2;

    /// <summary>Probability that the network drops, or duplicates, a message.</summary>
    public double Drop { get; init; } = 0.05;

    public double Duplicate { get; init; } = 0.05;

    /// <summary>Messages take 1..MaxDelayMs; independent delays reorder them.</summary>
    public int MaxDelayMs { get; init; } = 40;

    /// <summary>Partitions, crashes and clock jumps scheduled during the fault phase.</summary>
    public int Faults { get; init; } = 4;

    /// <summary>Length of the write and fault phase; everything heals at its end.</summary>
    public int FaultPhaseMs { get; init; } = 2_000;

    /// <summary>How long after the last heal the regions have to converge (simulated time).</summary>
    public int ConvergeWithinMs { get; init; } = 15_000;

    /// <summary>
    /// Regions' wall clocks are off by up to this much and a clock fault steps one back by up to 100 ms; the receiving
    /// HLC's skew bound is <see cref="MaxSkewMs"/>, above the worst difference the defaults can produce (a change beyond
    /// it is held back until the wall clocks agree, which a constant skew never does).
    /// </summary>
    public int ClockSkewMs { get; init; } = 200;

    public int MaxSkewMs { get; init; } = 1_000;

    /// <summary>Negative control: the receiver acknowledges a batch when it arrives, before its apply commits.</summary>
    public bool AckBeforeCommit { get; init; }

    /// <summary>The document merge rule the receiver applies (the real one unless a negative control swaps it).</summary>
    public Func<DocumentRegister, DocumentRegister?, bool> Supersedes { get; init; } = DocumentRegister.Supersedes;

    /// <summary>The counter merge rule (the real one unless a negative control swaps it).</summary>
    public Func<PnCounter, PnCounter, PnCounter> MergeCounters { get; init; } = PnCounter.Merge;
}

/// <summary>What a run found: the trace's hash (same seed, same hash), the checkers' violations, some counts.</summary>
public sealed record SimulationResult(int Seed, string TraceHash, IReadOnlyList<string> Violations, int Events, int Messages, int Acknowledged, long ConvergedAfterMs);

/// <summary>
/// A deterministic simulation of Geo's replication protocol in one process: regions with their change logs, per-peer
/// senders (sent/durable cursors, a window of unacknowledged batches, rewind on the receiver's request, resend after a
/// silent peer) and receivers (a per-session contiguous cursor, duplicates acknowledged without applying, a gap answered
/// with rewind, a change beyond the HLC skew bound held back, apply and checkpoint committed together, then the
/// acknowledgement) over a simulated network (delay, reorder, drop, duplicate, partitions) and simulated wall clocks
/// (skewed, stepping back), with crashes that lose everything volatile. Documents merge with
/// <see cref="DocumentRegister.Supersedes"/>, counters with <see cref="PnCounter.Merge"/>, versions come from the real
/// <see cref="HybridLogicalClock"/> — the real pure pieces of src/Core. The sender and receiver themselves are a model of
/// src/Replicator's <c>StreamSender</c> and <c>ReplicationService</c>/<c>BatchApplier</c> (those classes are bound to gRPC
/// streams, Npgsql and real time), not the classes themselves. Everything is driven by one seed: one event queue ordered
/// by (time, sequence), one <see cref="Random"/>.
/// </summary>
public sealed class ReplicationSimulation
{
    private const int PollMs = 10;
    private const int PeerTimeoutMs = 300;
    private const int RewindDelayMs = 20;
    private const int ReconnectMs = 50;

    private readonly SimulationOptions _o;
    private readonly Random _random;
    private readonly PriorityQueue<Action, (long At, long Seq)> _queue = new();
    private readonly IncrementalHash _trace = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<Region> _regions = [];
    private readonly Dictionary<(string From, string To), long> _sessions = [];
    private readonly HashSet<(string, string)> _partitioned = [];
    private readonly List<string> _violations = [];
    private readonly Dictionary<string, DocumentRegister> _newestWrite = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _counterSums = new(StringComparer.Ordinal);
    private long _seq;
    private long _nextSession;
    private long _now;
    private int _events;
    private int _messages;
    private int _acknowledged;

    private ReplicationSimulation(int seed, SimulationOptions options)
    {
        _o = options;
        _random = new Random(seed);
        Seed = seed;
    }

    private int Seed { get; }

    /// <summary>Runs one seed to the end and checks it.</summary>
    public static SimulationResult Run(int seed, SimulationOptions? options = null) => new ReplicationSimulation(seed, options ?? new SimulationOptions()).Run();

    private SimulationResult Run()
    {
        for (var i = 0; i < _o.Regions; i++)
        {
            var skew = _random.Next(-_o.ClockSkewMs, _o.ClockSkewMs + 1);
            _regions.Add(new Region(((char)('a' + i)).ToString(), new SimClock(this, skew), _o.MaxSkewMs));
        }

        foreach (var region in _regions)
        {
            foreach (var peer in Peers(region))
            {
                var (r, p) = (region, peer);
                At(_random.Next(0, PollMs), () => Tick(r, p));
            }
        }

        for (var i = 0; i < _o.Writes; i++)
        {
            var region = _regions[_random.Next(_regions.Count)];
            At(_random.Next(0, _o.FaultPhaseMs), () => ClientWrite(region));
        }

        for (var i = 0; i < _o.Faults; i++)
        {
            ScheduleFault();
        }

        var healedAt = (long)_o.FaultPhaseMs;
        var deadline = healedAt + _o.ConvergeWithinMs;
        long convergedAt = -1;
        while (_queue.TryDequeue(out var action, out var when))
        {
            if (when.At > deadline)
            {
                break;
            }

            _now = when.At;
            _events++;
            action();
            if (_now >= healedAt && convergedAt < 0 && _events % 16 == 0 && Quiescent())
            {
                convergedAt = _now;
                break;
            }
        }

        if (convergedAt < 0 && Quiescent())
        {
            convergedAt = _now;
        }

        CheckFinal(convergedAt);
        Trace($"end {convergedAt}");
        var hash = Convert.ToHexString(_trace.GetHashAndReset());
        return new SimulationResult(Seed, hash, _violations, _events, _messages, _acknowledged, convergedAt < 0 ? -1 : convergedAt - healedAt);
    }

    // ---- workload -------------------------------------------------------------------------------------------------

    private void ClientWrite(Region region)
    {
        if (!region.Up)
        {
            Trace($"write refused {region.Id}"); // not acknowledged: the client saw an error
            return;
        }

        Change change;
        if (_random.NextDouble() < 0.7)
        {
            var key = "k" + _random.Next(_o.Keys).ToString(CultureInfo.InvariantCulture);
            var version = new DataVersion(region.Hlc.Now(), region.Id);
            var deleted = _random.NextDouble() < 0.1;
            var write = new DocumentRegister(version, deleted, deleted ? null : $"{region.Id}:{_events}");
            region.Docs.TryGetValue(key, out var stored);
            if (DocumentRegister.Supersedes(write, stored))
            {
                region.Docs[key] = write;
            }

            if (!_newestWrite.TryGetValue(key, out var newest) || write.Version > newest.Version)
            {
                _newestWrite[key] = write;
            }

            change = new Change(region.Log.Count + 1, region.Id, key, write, null);
        }
        else
        {
            var key = "c" + _random.Next(_o.Counters).ToString(CultureInfo.InvariantCulture);
            var delta = _random.Next(-3, 6);
            var counter = region.Counters.GetValueOrDefault(key, PnCounter.Empty).Add(region.Id, delta);
            region.Counters[key] = counter;
            _counterSums[key] = _counterSums.GetValueOrDefault(key) + delta;

            // State-based: the change carries the origin's whole component, so merging by max is idempotent.
            var own = new PnCounter(ImmutableSortedDictionary.Create<string, CounterComponent>(StringComparer.Ordinal).Add(region.Id, counter.Components[region.Id]));
            change = new Change(region.Log.Count + 1, region.Id, key, null, own);
        }

        region.Log.Add(change);
        _acknowledged++;
        Trace($"write {region.Id} #{change.Seq} {change.Key} {change.Doc?.Version.ToString() ?? "counter"}");
    }

    // ---- faults ---------------------------------------------------------------------------------------------------

    private void ScheduleFault()
    {
        var start = _random.Next(0, _o.FaultPhaseMs - 100);
        var length = _random.Next(50, Math.Min(800, _o.FaultPhaseMs - start));
        var a = _regions[_random.Next(_regions.Count)];
        switch (_random.Next(3))
        {
            case 0:
                var b = Peers(a).ElementAt(_random.Next(_regions.Count - 1));
                At(start, () => Partition(a, b, true));
                At(start + length, () => Partition(a, b, false));
                break;
            case 1:
                At(start, () => Crash(a));
                At(start + length, () => Restart(a));
                break;
            default:
                var back = _random.Next(1, 101);
                At(start, () =>
                {
                    a.Clock.Offset -= back; // the wall clock steps back (NTP); the HLC must not
                    Trace($"clock {a.Id} -{back}");
                });
                break;
        }
    }

    private void Partition(Region a, Region b, bool cut)
    {
        Trace($"{(cut ? "partition" : "heal")} {a.Id}|{b.Id}");
        if (cut)
        {
            _partitioned.Add(Link(a, b));
            EndSession(a, b);
            EndSession(b, a);
        }
        else
        {
            _partitioned.Remove(Link(a, b));
        }
    }

    private void Crash(Region region)
    {
        if (!region.Up)
        {
            return;
        }

        Trace($"crash {region.Id}");
        region.Up = false;
        foreach (var peer in Peers(region))
        {
            EndSession(region, peer);
            EndSession(peer, region);
        }

        // Volatile state is gone; the log, the data, both kinds of checkpoints are durable.
        region.Senders.Clear();
        region.Receiving.Clear();
    }

    private void Restart(Region region)
    {
        if (region.Up)
        {
            return;
        }

        Trace($"restart {region.Id}");
        region.Up = true;
        region.Hlc = new HybridLogicalClock(region.Clock, TimeSpan.FromMilliseconds(_o.MaxSkewMs)); // a new process
    }

    // ---- sender ---------------------------------------------------------------------------------------------------

    private void Tick(Region region, Region peer)
    {
        At(_now + PollMs, () => Tick(region, peer));
        if (!region.Up)
        {
            return;
        }

        var key = (region.Id, peer.Id);
        if (_sessions.GetValueOrDefault(key) == 0)
        {
            if (!peer.Up || _partitioned.Contains(Link(region, peer)) || _now < region.ReconnectAt.GetValueOrDefault(peer.Id))
            {
                return;
            }

            // Connect: the sender starts from its own durable checkpoint, the receiver's session from its stored one.
            var session = ++_nextSession;
            _sessions[key] = session;
            var durable = region.SenderDurable.GetValueOrDefault(peer.Id);
            region.Senders[peer.Id] = new SenderState { Session = session, Sent = durable, LastProgressAt = _now };
            peer.Receiving[region.Id] = new ReceiverSession(session, peer.ReceiverCheckpoint.GetValueOrDefault(region.Id));
            Trace($"connect {region.Id}>{peer.Id} s{session} from {durable}");
        }

        var s = region.Senders[peer.Id];
        if (s.RewindAt is { } rewindAt)
        {
            if (_now < rewindAt)
            {
                return;
            }

            Rewind(region, peer, s, "asked");
        }

        if (s.Inflight.Count > 0 && _now - s.LastProgressAt > PeerTimeoutMs)
        {
            Rewind(region, peer, s, "silent");
        }

        while (s.Inflight.Count < _o.Window && s.Sent < region.Log.Count)
        {
            var after = s.Sent;
            var last = Math.Min(region.Log.Count, after + _o.BatchSize);
            var changes = region.Log.Skip((int)after).Take((int)(last - after)).ToList();
            s.Inflight.Enqueue(last);
            s.Sent = last;
            Send(region, peer, s.Session, new Batch(after, last, changes));
        }
    }

    private void Rewind(Region region, Region peer, SenderState s, string why)
    {
        var durable = region.SenderDurable.GetValueOrDefault(peer.Id);
        Trace($"rewind {region.Id}>{peer.Id} {why} {s.Sent}->{durable}");
        s.Sent = durable;
        s.Inflight.Clear();
        s.RewindAt = null;
        s.LastProgressAt = _now;
    }

    private void OnAck(Region region, Region peer, Ack ack)
    {
        if (!region.Senders.TryGetValue(peer.Id, out var s))
        {
            return;
        }

        var durable = region.SenderDurable.GetValueOrDefault(peer.Id);
        if (ack.AppliedThrough > durable)
        {
            region.SenderDurable[peer.Id] = ack.AppliedThrough; // the sender's checkpoint, persisted on acknowledgement
            s.LastProgressAt = _now;

            // The protocol's promise: an acknowledged position is committed at the receiver.
            var committed = peer.ReceiverCheckpoint.GetValueOrDefault(region.Id);
            if (ack.AppliedThrough > committed)
            {
                Violation($"acknowledged beyond the commit: {region.Id}>{peer.Id} acked through {ack.AppliedThrough}, receiver committed {committed}");
            }
        }

        var stillInFlight = s.Inflight.Contains(ack.BatchLastSeq);
        while (s.Inflight.Count > 0 && s.Inflight.Peek() <= ack.AppliedThrough)
        {
            s.Inflight.Dequeue();
        }

        if (ack.Rewind && stillInFlight && s.RewindAt is null)
        {
            s.RewindAt = _now + RewindDelayMs;
        }

        Trace($"ack {peer.Id}>{region.Id} {ack.AppliedThrough}/{ack.BatchLastSeq}{(ack.Rewind ? " rewind" : "")}");
    }

    // ---- receiver -------------------------------------------------------------------------------------------------

    private void OnBatch(Region region, Region peer, long session, Batch batch)
    {
        if (!region.Receiving.TryGetValue(peer.Id, out var r) || r.Session != session)
        {
            return;
        }

        r.Pending.Enqueue(batch);
        if (!r.Busy)
        {
            ProcessNext(region, peer, r);
        }
    }

    private void ProcessNext(Region region, Region peer, ReceiverSession r)
    {
        if (!r.Pending.TryDequeue(out var batch))
        {
            r.Busy = false;
            return;
        }

        r.Busy = true;
        if (batch.LastSeq <= r.Contiguous)
        {
            Reply(region, peer, r, new Ack(r.Contiguous, batch.LastSeq, false)); // a duplicate: nothing to apply
            ProcessNext(region, peer, r);
            return;
        }

        if (batch.AfterSeq > r.Contiguous)
        {
            Reply(region, peer, r, new Ack(r.Contiguous, batch.LastSeq, true)); // a gap: resend from the checkpoint
            ProcessNext(region, peer, r);
            return;
        }

        var accepted = new List<Change>();
        var through = batch.LastSeq;
        var held = false;
        foreach (var change in batch.Changes.Where(c => c.Seq > r.Contiguous))
        {
            if (change.Doc is { } doc && region.Hlc.IsBeyondSkew(doc.Version.Hlc))
            {
                through = change.Seq - 1; // quarantined: held back, acknowledged up to the change before it
                held = true;
                break;
            }

            accepted.Add(change);
        }

        if (_o.AckBeforeCommit)
        {
            r.Contiguous = through;
            Reply(region, peer, r, new Ack(through, batch.LastSeq, held));
        }

        // The apply and the checkpoint commit together a little later; a crash before then loses both.
        var crashEpoch = region.Incarnation;
        At(_now + _random.Next(1, 8), () =>
        {
            if (region.Incarnation != crashEpoch || !region.Up)
            {
                return;
            }

            foreach (var change in accepted)
            {
                Apply(region, change);
            }

            region.ReceiverCheckpoint[peer.Id] = Math.Max(region.ReceiverCheckpoint.GetValueOrDefault(peer.Id), through);
            Trace($"commit {region.Id}<{peer.Id} through {through}");
            if (region.Receiving.GetValueOrDefault(peer.Id) is { } current && current == r)
            {
                if (!_o.AckBeforeCommit)
                {
                    r.Contiguous = through;
                    Reply(region, peer, r, new Ack(through, batch.LastSeq, held));
                }

                ProcessNext(region, peer, r);
            }
        });
    }

    private void Apply(Region region, Change change)
    {
        if (change.Doc is { } doc)
        {
            region.Hlc.TryObserve(doc.Version.Hlc);
            region.Docs.TryGetValue(change.Key, out var stored);
            if (_o.Supersedes(doc, stored))
            {
                region.Docs[change.Key] = doc;
            }
        }
        else
        {
            region.Counters[change.Key] = _o.MergeCounters(region.Counters.GetValueOrDefault(change.Key, PnCounter.Empty), change.Counter!);
        }
    }

    private void Reply(Region region, Region peer, ReceiverSession r, Ack ack) => Send(region, peer, r.Session, ack);

    // ---- network --------------------------------------------------------------------------------------------------

    private void Send(Region from, Region to, long session, object message)
    {
        _messages++;
        if (_random.NextDouble() < _o.Drop)
        {
            Trace($"drop {from.Id}>{to.Id}");
            return;
        }

        var copies = _random.NextDouble() < _o.Duplicate ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            At(_now + _random.Next(1, _o.MaxDelayMs + 1), () => Deliver(from, to, session, message));
        }
    }

    private void Deliver(Region from, Region to, long session, object message)
    {
        // A stream that ended (partition, crash, reconnect) delivers nothing more.
        var stream = message is Batch ? (from.Id, to.Id) : (to.Id, from.Id);
        if (!from.Up || !to.Up || _partitioned.Contains(Link(from, to)) || _sessions.GetValueOrDefault(stream) != session)
        {
            return;
        }

        switch (message)
        {
            case Batch batch:
                OnBatch(to, from, session, batch);
                break;
            case Ack ack:
                OnAck(to, from, ack);
                break;
        }
    }

    private void EndSession(Region from, Region to)
    {
        if (_sessions.GetValueOrDefault((from.Id, to.Id)) != 0)
        {
            _sessions[(from.Id, to.Id)] = 0;
            from.Senders.Remove(to.Id);
            to.Receiving.Remove(from.Id);
            from.ReconnectAt[to.Id] = _now + ReconnectMs;
        }
    }

    // ---- checkers -------------------------------------------------------------------------------------------------

    private bool Quiescent()
        => _regions.All(r => r.Up) && _partitioned.Count == 0
            && _regions.All(r => Peers(r).All(p => r.SenderDurable.GetValueOrDefault(p.Id) == r.Log.Count && p.ReceiverCheckpoint.GetValueOrDefault(r.Id) == r.Log.Count));

    private void CheckFinal(long convergedAt)
    {
        if (convergedAt < 0)
        {
            var behind = _regions.SelectMany(r => Peers(r).Where(p => p.ReceiverCheckpoint.GetValueOrDefault(r.Id) < r.Log.Count)
                .Select(p => $"{p.Id} has {p.ReceiverCheckpoint.GetValueOrDefault(r.Id)} of {r.Log.Count} from {r.Id}"));
            Violation($"not converged {_o.ConvergeWithinMs} ms after the last heal: {string.Join("; ", behind)}");
        }

        foreach (var (key, newest) in _newestWrite)
        {
            foreach (var region in _regions)
            {
                var held = region.Docs.GetValueOrDefault(key);
                if (held is null || held.Version != newest.Version || held.Body != newest.Body)
                {
                    Violation($"LWW: {region.Id} holds {held?.Version.ToString() ?? "nothing"} for {key}, the newest acknowledged write is {newest.Version}");
                }
            }
        }

        foreach (var (key, sum) in _counterSums)
        {
            foreach (var region in _regions)
            {
                var value = region.Counters.GetValueOrDefault(key, PnCounter.Empty).Value;
                if (value != sum)
                {
                    Violation($"counter: {region.Id} reads {value} for {key}, the acknowledged increments sum to {sum}");
                }
            }
        }
    }

    private void Violation(string what)
    {
        _violations.Add($"t={_now.ToString(CultureInfo.InvariantCulture)} {what}");
        Trace("violation " + what);
    }

    // ---- plumbing -------------------------------------------------------------------------------------------------

    private void At(long when, Action action) => _queue.Enqueue(action, (when, ++_seq));

    private void Trace(string line) => _trace.AppendData(Encoding.UTF8.GetBytes($"{_now} {line}\n"));

    private IEnumerable<Region> Peers(Region region) => _regions.Where(r => r != region);

    private static (string, string) Link(Region a, Region b) => string.CompareOrdinal(a.Id, b.Id) < 0 ? (a.Id, b.Id) : (b.Id, a.Id);

    private sealed record Change(long Seq, string Origin, string Key, DocumentRegister? Doc, PnCounter? Counter);

    private sealed record Batch(long AfterSeq, long LastSeq, IReadOnlyList<Change> Changes);

    private sealed record Ack(long AppliedThrough, long BatchLastSeq, bool Rewind);

    private sealed class SenderState
    {
        public long Session { get; init; }

        public long Sent { get; set; }

        public Queue<long> Inflight { get; } = new();

        public long? RewindAt { get; set; }

        public long LastProgressAt { get; set; }
    }

    private sealed class ReceiverSession(long session, long contiguous)
    {
        public long Session { get; } = session;

        /// <summary>Everything up to here is committed (or, under the negative control, merely acknowledged).</summary>
        public long Contiguous { get; set; } = contiguous;

        public Queue<Batch> Pending { get; } = new();

        public bool Busy { get; set; }
    }

    private sealed class Region
    {
        private bool _up = true;

        public Region(string id, SimClock clock, int maxSkewMs)
        {
            Id = id;
            Clock = clock;
            Hlc = new HybridLogicalClock(clock, TimeSpan.FromMilliseconds(maxSkewMs));
        }

        public string Id { get; }

        public SimClock Clock { get; }

        public HybridLogicalClock Hlc { get; set; }

        public bool Up
        {
            get => _up;
            set
            {
                _up = value;
                Incarnation++;
            }
        }

        /// <summary>Bumped on every crash and restart: work scheduled by an earlier incarnation is void.</summary>
        public int Incarnation { get; private set; }

        // Durable.
        public List<Change> Log { get; } = [];

        public Dictionary<string, DocumentRegister> Docs { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, PnCounter> Counters { get; } = new(StringComparer.Ordinal);

        /// <summary>Per peer: the receiver's checkpoint, committed with the applied changes.</summary>
        public Dictionary<string, long> ReceiverCheckpoint { get; } = new(StringComparer.Ordinal);

        /// <summary>Per peer: the sender's checkpoint, persisted when an acknowledgement arrives.</summary>
        public Dictionary<string, long> SenderDurable { get; } = new(StringComparer.Ordinal);

        // Volatile.
        public Dictionary<string, SenderState> Senders { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, ReceiverSession> Receiving { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, long> ReconnectAt { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>A region's wall clock: simulated time plus the region's skew (which faults can step back).</summary>
    private sealed class SimClock(ReplicationSimulation simulation, long offset) : TimeProvider
    {
        private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public long Offset { get; set; } = offset;

        public override DateTimeOffset GetUtcNow() => Epoch.AddMilliseconds(simulation._now + Offset);
    }
}
