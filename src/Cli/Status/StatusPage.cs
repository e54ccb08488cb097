using System.Net;
using System.Text;
using Geo.Cli.Checkpoints;
using Geo.Core.Topology;

namespace Geo.Cli.Status;

/// <summary>Renders the status page as one self-contained HTML document (no scripts; it refreshes itself).</summary>
internal static class StatusPage
{
    public static string Render(IReadOnlyList<RegionInfo> regions, IReadOnlyDictionary<(string Region, string Service), bool> health,
        CheckpointsCommand.Readings readings, IReadOnlyDictionary<string, StatusPageCommand.DirectoryView> directory,
        IReadOnlyList<StatusPageCommand.ConflictView> conflicts, CheckpointReport? report, DateTimeOffset at, double refresh)
    {
        var h = new StringBuilder();
        h.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append(FormattableString.Invariant($"<meta http-equiv=\"refresh\" content=\"{Math.Ceiling(refresh)}\">"))
            .Append("<title>Geo status</title><style>")
            .Append("body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:1.6em}")
            .Append("table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}")
            .Append(".ok{background:#d8f5d8}.bad{background:#f8d0d0}.warn{background:#fff1c2}.muted{color:#888}")
            .Append("</style></head><body>");
        h.Append("<h1>Geo status</h1><p class=\"muted\" id=\"updated\">read at ").Append(E(at.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture))).Append("</p>");

        // Regions and health.
        var services = health.Keys.Select(k => k.Service).Distinct(StringComparer.Ordinal).OrderBy(Order).ToList();
        h.Append("<h2>Regions</h2><table id=\"regions\"><tr><th>region</th><th>jurisdiction</th>");
        foreach (var s in services)
        {
            h.Append("<th>").Append(E(s)).Append("</th>");
        }

        h.Append("</tr>");
        foreach (var r in regions)
        {
            h.Append("<tr data-region=\"").Append(E(r.Id)).Append("\"><td>").Append(E(r.Id)).Append("</td><td>").Append(E(r.Jurisdiction)).Append("</td>");
            foreach (var s in services)
            {
                var known = health.TryGetValue((r.Id, s), out var ready);
                h.Append(known ? ready ? "<td class=\"ok\">ready</td>" : "<td class=\"bad\">down</td>" : "<td class=\"muted\">-</td>");
            }

            h.Append("</tr>");
        }

        h.Append("</table>");

        // Replication: lag and pending from each replicator's last scrape.
        h.Append("<h2>Replication (lag s / pending changes)</h2><table id=\"replication\"><tr><th>from \\ to</th>");
        foreach (var to in regions)
        {
            h.Append("<th>").Append(E(to.Id)).Append("</th>");
        }

        h.Append("</tr>");
        foreach (var from in regions)
        {
            var samples = readings.Metrics.TryGetValue((from.Id, "replicator", 0), out var text) ? PromText.Parse(text) : null;
            h.Append("<tr><th>").Append(E(from.Id)).Append("</th>");
            foreach (var to in regions)
            {
                var lag = samples?.FirstOrDefault(s => s.Name == "geo_replicator_lag_seconds" && s.Label("peer") == to.Id)?.Value;
                var pending = samples?.FirstOrDefault(s => s.Name == "geo_replicator_pending" && s.Label("peer") == to.Id)?.Value;
                if (to.Id == from.Id || (lag is null && samples is not null))
                {
                    h.Append("<td class=\"muted\">-</td>");
                }
                else if (samples is null)
                {
                    h.Append("<td class=\"bad\">unreadable</td>");
                }
                else
                {
                    var css = lag > 30 ? "bad" : lag > 5 ? "warn" : "ok";
                    h.Append("<td class=\"").Append(css).Append("\" data-from=\"").Append(E(from.Id)).Append("\" data-to=\"").Append(E(to.Id)).Append("\">")
                        .Append(StatusPageCommand.Number(lag)).Append(" s / ").Append(StatusPageCommand.Number(pending)).Append("</td>");
                }
            }

            h.Append("</tr>");
        }

        h.Append("</table>");

        // Shard maps and moves.
        h.Append("<h2>Shard maps</h2><table id=\"shards\"><tr><th>region</th><th>epoch</th><th>buckets per shard</th><th>fenced</th><th>moves</th></tr>");
        foreach (var r in regions)
        {
            directory.TryGetValue(r.Id, out var view);
            h.Append("<tr><td>").Append(E(r.Id)).Append("</td>");
            if (view?.Map is not { } map)
            {
                h.Append("<td colspan=\"4\" class=\"bad\">").Append(E(view?.Error ?? "no shard map")).Append("</td></tr>");
                continue;
            }

            h.Append("<td>").Append(map.Epoch).Append("</td><td>")
                .Append(E(string.Join(", ", map.BucketsPerShard.Select(kv => $"{kv.Key}: {kv.Value}")))).Append("</td><td")
                .Append(map.Fenced > 0 ? " class=\"warn\">" : ">").Append(map.Fenced).Append("</td><td>");
            h.Append(view.Moves.Count == 0 ? "none" : string.Join("<br>", view.Moves.Select(m =>
                E($"{m.MoveId}: {m.Source} → {m.Target}, {m.Buckets} buckets, {m.Phase} since {m.UpdatedAt:HH:mm:ss}"))));
            h.Append("</td></tr>");
        }

        h.Append("</table>");

        // Recent conflicts.
        h.Append("<h2>Recent conflicts</h2>");
        if (conflicts.Count == 0)
        {
            h.Append("<p id=\"conflicts\">none logged</p>");
        }
        else
        {
            h.Append("<table id=\"conflicts\"><tr><th>detected</th><th>shard</th><th>user</th><th>document</th><th>kept (region)</th><th>lost (region)</th></tr>");
            foreach (var c in conflicts)
            {
                h.Append("<tr><td>").Append(E(c.DetectedAt.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture))).Append("</td><td>")
                    .Append(E(c.Shard)).Append("</td><td>").Append(E(c.UserId)).Append("</td><td>").Append(E($"{c.Collection}/{c.Key}"))
                    .Append("</td><td>").Append(E(c.Winner)).Append("</td><td>").Append(E(c.Loser)).Append("</td></tr>");
            }

            h.Append("</table>");
        }

        // Checkpoints.
        h.Append("<h2>Decision checkpoints</h2>");
        if (report is null)
        {
            h.Append("<p id=\"checkpoints\">collecting a second reading…</p>");
        }
        else
        {
            h.Append("<table id=\"checkpoints\"><tr><th>region</th><th>scope</th><th>checkpoint</th><th>value</th><th>threshold</th></tr>");
            foreach (var c in report.Readings)
            {
                var css = c.Value is null ? "muted" : c.Breached ? "bad" : "ok";
                h.Append("<tr class=\"").Append(css).Append("\"><td>").Append(E(c.Region)).Append("</td><td>").Append(E(c.Scope)).Append("</td><td>")
                    .Append(E(c.Checkpoint)).Append("</td><td>").Append(StatusPageCommand.Number(c.Value)).Append("</td><td>")
                    .Append(c.Comparison == "above" ? "≤ " : "≥ ").Append(StatusPageCommand.Number(c.Threshold)).Append("</td></tr>");
            }

            h.Append("</table><h2>Steps the numbers call for</h2><table id=\"steps\"><tr><th>region</th><th>scope</th><th>step</th><th>evidence</th></tr>");
            foreach (var s in report.Recommendations.Where(s => s.Step != ScalingStep.None))
            {
                h.Append("<tr class=\"warn\"><td>").Append(E(s.Region)).Append("</td><td>").Append(E(s.Scope)).Append("</td><td>")
                    .Append(E(CheckpointsCommand.StepText(s.Step))).Append("</td><td>").Append(E(string.Join("; ", s.Evidence))).Append("</td></tr>");
            }

            if (report.Recommendations.All(s => s.Step == ScalingStep.None))
            {
                h.Append("<tr><td colspan=\"4\">none: every checkpoint is within its threshold</td></tr>");
            }

            h.Append("</table>");
        }

        var unreadable = readings.Unreachable;
        if (unreadable.Count > 0)
        {
            h.Append("<h2>Not read</h2><ul>");
            foreach (var u in unreadable)
            {
                h.Append("<li>").Append(E(u)).Append("</li>");
            }

            h.Append("</ul>");
        }

        return h.Append("</body></html>").ToString();
    }

    private static int Order(string service) => service switch
    {
        "edge" => 0,
        "directory" => 2,
        "replicator" => 3,
        _ => 1,
    };

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
