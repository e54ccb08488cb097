using System.Diagnostics;
using Geo.Contracts.Replication;

namespace Geo.Replicator.Telemetry;

/// <summary>
/// Spans that carry a write's trace across regions: the sender's span for a batch is a child of the trace of the
/// batch's first traced change (linked to every other one), and travels in the batch; the receiver's apply span is a
/// child of it. A batch without traced changes starts no span (polls at the tail would be most of the traces).
/// </summary>
internal static class ReplicationTracing
{
    public const string SourceName = "Geo.Replicator";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts "replication send" for <paramref name="batch"/> and records its context in the batch; null when untraced.</summary>
    public static Activity? StartSend(string peer, ChangeBatch batch)
    {
        var contexts = Contexts(batch);
        if (contexts.Count == 0)
        {
            return null;
        }

        var activity = Source.StartActivity("replication send", ActivityKind.Producer, contexts[0],
            Tags(peer, batch), contexts.Skip(1).Select(c => new ActivityLink(c)));
        if (activity is not null)
        {
            batch.TraceParent = activity.Id;
        }

        return activity;
    }

    /// <summary>Starts "replication apply" as a child of the sender's span for <paramref name="batch"/>; null when untraced.</summary>
    public static Activity? StartApply(string peer, ChangeBatch batch)
    {
        if (!batch.HasTraceParent || !ActivityContext.TryParse(batch.TraceParent, null, isRemote: true, out var parent))
        {
            return null;
        }

        return Source.StartActivity("replication apply", ActivityKind.Consumer, parent,
            Tags(peer, batch), Contexts(batch).Select(c => new ActivityLink(c)));
    }

    private static List<ActivityContext> Contexts(ChangeBatch batch)
    {
        var contexts = new List<ActivityContext>();
        foreach (var change in batch.Changes)
        {
            if (change.HasTraceParent && ActivityContext.TryParse(change.TraceParent, null, isRemote: true, out var context))
            {
                contexts.Add(context);
            }
        }

        return contexts;
    }

    private static KeyValuePair<string, object?>[] Tags(string peer, ChangeBatch batch) =>
    [
        new("geo.replication.peer", peer),
        new("geo.replication.stream", batch.Stream),
        new("geo.replication.changes", batch.Changes.Count),
        new("geo.replication.last_seq", batch.LastSeq),
    ];
}
