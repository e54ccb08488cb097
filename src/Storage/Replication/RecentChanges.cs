namespace Geo.Storage;

/// <summary>
/// The tail of one shard's change log of local origin, as the shard's senders read it. A shard has one sender per peer
/// region, and they all read the same new entries at about the same moment (the shard's NOTIFY wakes them together):
/// read from the database by each, every change was read once per peer. The window holds every local entry in
/// (From, To], where To is a stable position or the last entry of a full page; one fill at a time extends it for every
/// caller. A caller whose position is before the window reads the database itself.
/// <para>
/// Bounded: at most <see cref="MaxEntries"/> entries and <see cref="MaxChars"/> characters of bodies, none kept for
/// longer than <see cref="MaxAge"/>. When a local erase arrives, the window drops the user's earlier entries, as the
/// erase's transaction deleted them from the log. An erase from another region appends no local entry, so the user's
/// entries age out instead (within <see cref="MaxAge"/>); a sender that ships one meanwhile ships what it could have read
/// just before the erase, and every peer refuses it (the erase reached them through the directory).
/// </para>
/// </summary>
internal sealed class RecentChanges(TimeProvider time)
{
    /// <summary>Most entries one fill reads (one statement).</summary>
    internal const int FillRows = 1000;

    internal const int MaxEntries = 4096;

    internal const long MaxChars = 8L * 1024 * 1024;

    internal static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly List<(ShardChange Change, DateTimeOffset ReadAt)> _entries = [];
    private bool _started;
    private long _from;
    private long _to;
    private long _chars;
    private Task? _filling;

    /// <summary>The window's end: every local entry up to it is in the window or before it.</summary>
    public long To
    {
        get
        {
            lock (_gate)
            {
                return _to;
            }
        }
    }

    /// <summary>
    /// Adds to <paramref name="result"/> the window's entries after <paramref name="after"/>, until it holds
    /// <paramref name="limit"/>. False when <paramref name="after"/> is before the window (the caller reads the database).
    /// The first caller starts the window at its own position.
    /// </summary>
    public bool TryTake(long after, int limit, List<ShardChange> result)
    {
        lock (_gate)
        {
            if (!_started)
            {
                _started = true;
                _from = _to = after;
            }

            Trim();
            if (after < _from)
            {
                return false;
            }

            for (var i = FirstAfter(after); i < _entries.Count && result.Count < limit; i++)
            {
                result.Add(_entries[i].Change);
            }

            return true;
        }
    }

    /// <summary>
    /// Extends the window towards <paramref name="position"/> (a stable position): joins the fill in flight, or starts one
    /// that reads from <see cref="To"/>. Returns when that fill ended; the window may still end before the position (a
    /// full page, or a fill that started for an earlier position), so the caller checks <see cref="To"/> again.
    /// </summary>
    /// <param name="position">Everything up to it is final.</param>
    /// <param name="read">Reads the local entries in (after, upto], at most a number of them, in seq order.</param>
    /// <param name="ct">Cancels this caller's wait, not the fill (other callers wait for it too).</param>
    public Task ExtendAsync(long position, Func<long, long, int, Task<List<ShardChange>>> read, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_to >= position)
            {
                return Task.CompletedTask;
            }

            if (_filling is null || _filling.IsCompleted)
            {
                _filling = FillAsync(_to, position, read);
            }

            return _filling.WaitAsync(ct);
        }
    }

    private async Task FillAsync(long from, long upto, Func<long, long, int, Task<List<ShardChange>>> read)
    {
        await Task.Yield(); // never read the database under the gate
        var rows = await read(from, upto, FillRows);
        lock (_gate)
        {
            var now = time.GetUtcNow();
            foreach (var row in rows)
            {
                if (row.Kind == ChangeKind.UserErase)
                {
                    _chars -= _entries.Where(e => e.Change.UserId == row.UserId).Sum(e => (long)(e.Change.Body?.Length ?? 0));
                    _entries.RemoveAll(e => e.Change.UserId == row.UserId);
                }

                _entries.Add((row, now));
                _chars += row.Body?.Length ?? 0;
            }

            _to = rows.Count == FillRows ? rows[^1].Seq : upto;
            Trim();
        }
    }

    // Drops entries from the front past the bounds; the window then starts at the last one dropped. Under the gate.
    private void Trim()
    {
        var now = time.GetUtcNow();
        var drop = 0;
        while (drop < _entries.Count
               && (_entries.Count - drop > MaxEntries || _chars > MaxChars || now - _entries[drop].ReadAt > MaxAge))
        {
            _chars -= _entries[drop].Change.Body?.Length ?? 0;
            _from = _entries[drop].Change.Seq;
            drop++;
        }

        _entries.RemoveRange(0, drop);
    }

    // The index of the first entry whose seq is above after (binary search: entries are in seq order). Under the gate.
    private int FirstAfter(long after)
    {
        int low = 0, high = _entries.Count;
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (_entries[mid].Change.Seq <= after)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return low;
    }
}
