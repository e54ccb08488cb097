using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;

namespace Geo.Cli.Tests.Shards;

/// <summary>
/// Sends writes to the RegionService at a fixed total rate, bounded in count and time: each user has four sequential
/// workers that each alternate a document PUT (one key each, increasing values) and a counter increment, and records what was
/// acknowledged (2xx), when, and how long every write took.
/// </summary>
internal sealed class BoundedWriter(HttpClient http, IReadOnlyList<string> users, int ratePerSecond, int maxWrites, TimeSpan maxTime) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<double> _latencies = [];
    private readonly ConcurrentDictionary<string, long> _counterAcks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string, string), long> _lastDocument = new();
    private readonly ConcurrentDictionary<(string, string), long> _documentAcks = new();
    private readonly ConcurrentBag<string> _unexpected = [];
    private readonly ConcurrentQueue<long> _ackTimes = new();
    private int _sent;
    private int _acknowledged;
    private int _refused;
    private Task? _run;
    private long _started;

    public void Start()
    {
        _started = Stopwatch.GetTimestamp();
        // Four workers per user, each owning one document key, so writes to a key stay ordered while the total rate holds.
        var workers = users.SelectMany(u => Enumerable.Range(0, 4).Select(k => (User: u, Key: $"k{k}"))).ToList();
        var interval = TimeSpan.FromSeconds((double)workers.Count / ratePerSecond);
        _run = Task.WhenAll(workers.Select(w => Task.Run(() => WorkAsync(w.User, w.Key, interval))));
    }

    /// <summary>Writes sent and acknowledged so far, the rate and the slowest write, for logs.</summary>
    public string Progress => $"{_sent} sent, {_acknowledged} acknowledged in {Stopwatch.GetElapsedTime(_started).TotalSeconds:F1} s, max {(_latencies.IsEmpty ? 0 : _latencies.Max()):F0} ms";

    public async Task<WriterStats> StopAsync()
    {
        await _stop.CancelAsync();
        await _run!;
        var elapsed = Stopwatch.GetElapsedTime(_started);
        if (!_unexpected.IsEmpty)
        {
            throw new InvalidOperationException("Writes with an unknown outcome or an unexpected status: " + string.Join("; ", _unexpected.Take(5)));
        }

        var sorted = _latencies.Order().ToArray();
        // The write pause as a user sees it: the longest stretch with no acknowledged write (writes are paced evenly, so it is a few ms without a pause).
        var acks = _ackTimes.Order().ToArray();
        var gaps = acks.Zip(acks.Skip(1), (a, b) => b - a).Order().ToArray();
        TimeSpan Gap(long ticks) => TimeSpan.FromSeconds((double)ticks / Stopwatch.Frequency);
        return new WriterStats(_sent, _acknowledged, _refused, elapsed,
            gaps.Length == 0 ? TimeSpan.Zero : Gap(gaps[^1]), gaps.Length == 0 ? TimeSpan.Zero : Gap(gaps[gaps.Length / 2]),
            TimeSpan.FromMilliseconds(sorted.Length == 0 ? 0 : sorted[^1]), TimeSpan.FromMilliseconds(sorted.Length == 0 ? 0 : sorted[(int)(sorted.Length * 0.99)]),
            _counterAcks, _lastDocument, _documentAcks);
    }

    private async Task WorkAsync(string user, string key, TimeSpan interval)
    {
        for (var i = 0L; !_stop.IsCancellationRequested; i++)
        {
            if (Interlocked.Increment(ref _sent) > maxWrites || Stopwatch.GetElapsedTime(_started) > maxTime)
            {
                Interlocked.Decrement(ref _sent);
                return;
            }

            var due = interval * i - Stopwatch.GetElapsedTime(_started);
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due);
            }

            var begun = Stopwatch.GetTimestamp();
            try
            {
                using var response = i % 2 == 0
                    ? await http.PutAsJsonAsync($"/v1/users/{user}/docs/notes/{key}", new { n = i })
                    : await http.PostAsJsonAsync($"/v1/users/{user}/counters/c", new { delta = 1 });
                _latencies.Add(Stopwatch.GetElapsedTime(begun).TotalMilliseconds);
                if (response.IsSuccessStatusCode)
                {
                    _ackTimes.Enqueue(Stopwatch.GetTimestamp());
                    Interlocked.Increment(ref _acknowledged);
                    if (i % 2 == 0)
                    {
                        _lastDocument[(user, key)] = i;
                        _documentAcks.AddOrUpdate((user, key), 1, (_, n) => n + 1);
                    }
                    else
                    {
                        _counterAcks.AddOrUpdate(user, 1, (_, n) => n + 1);
                    }
                }
                else if ((int)response.StatusCode is 503 or 429)
                {
                    Interlocked.Increment(ref _refused); // refused before anything was written
                }
                else
                {
                    _unexpected.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            }
            catch (HttpRequestException e)
            {
                _unexpected.Add(e.Message);
            }
            catch (TaskCanceledException e)
            {
                _unexpected.Add("timeout: " + e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        _stop.Dispose();
    }
}

internal sealed record WriterStats(int Sent, int Acknowledged, int Refused, TimeSpan Elapsed, TimeSpan LongestAckGap, TimeSpan MedianAckGap, TimeSpan MaxLatency, TimeSpan P99,
    IReadOnlyDictionary<string, long> CounterAcks, IReadOnlyDictionary<(string User, string Key), long> LastDocument, IReadOnlyDictionary<(string User, string Key), long> DocumentAcks);
