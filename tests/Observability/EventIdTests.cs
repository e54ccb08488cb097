using System.Text.RegularExpressions;
using Geo.Testing.Services;

namespace Geo.Observability;

/// <summary>
/// Log event ids, read from the sources: every message takes its id from its assembly's <c>EventIds.cs</c>, the ids
/// of an assembly are distinct and inside its range, and the ranges (the table in docs/operations.md, "Log event ids")
/// do not overlap, so no two messages in one process share an id.
/// </summary>
public sealed partial class EventIdTests
{
    [Fact]
    public void Every_message_has_an_id_of_its_own_assembly_range_and_no_two_share_one()
    {
        var root = ServiceProcess.RepositoryRoot();
        var ranges = Ranges(File.ReadAllText(Path.Combine(root, "docs", "operations.md")));
        Assert.NotEmpty(ranges);
        foreach (var (a, b) in ranges.SelectMany((a, i) => ranges.Skip(i + 1).Select(b => (a, b))))
        {
            Assert.True(a.Last < b.First || b.Last < a.First, $"ranges of {a.Assembly} and {b.Assembly} overlap");
        }

        var problems = new List<string>();
        foreach (var project in Directory.GetDirectories(Path.Combine(root, "src")))
        {
            var assembly = "Geo." + Path.GetFileName(project);
            var sources = Directory.GetFiles(project, "*.cs", SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                    && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                .ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllText);
            var uses = sources.SelectMany(s => EventIdUse().Matches(s.Value).Select(m => (File: s.Key, Id: m.Groups["id"].Value))).ToList();
            if (uses.Count == 0)
            {
                continue;
            }

            var table = sources.TryGetValue(Path.Combine("src", Path.GetFileName(project), "EventIds.cs"), out var text)
                ? Constant().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => int.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture))
                : [];
            problems.AddRange(uses.Where(u => !u.Id.StartsWith("EventIds.", StringComparison.Ordinal)).Select(u => $"{u.File}: literal event id {u.Id} (take it from EventIds.cs)"));
            problems.AddRange(uses.Where(u => u.Id.StartsWith("EventIds.", StringComparison.Ordinal) && !table.ContainsKey(u.Id["EventIds.".Length..]))
                .Select(u => $"{u.File}: {u.Id} is not in {assembly}'s EventIds.cs"));
            problems.AddRange(table.GroupBy(c => c.Value).Where(g => g.Count() > 1).Select(g => $"{assembly}: {string.Join(", ", g.Select(c => c.Key))} share {g.Key}"));
            problems.AddRange(uses.GroupBy(u => u.Id).Where(g => g.Count() > 1).Select(g => $"{assembly}: {g.Key} names {g.Count()} messages"));
            var matching = ranges.Where(r => r.Assembly == assembly).ToList();
            if (matching.Count != 1)
            {
                problems.Add($"{assembly} logs but has {matching.Count} ranges in docs/operations.md (one wanted)");
                continue;
            }

            var range = matching[0];
            problems.AddRange(table.Where(c => c.Value < range.First || c.Value > range.Last).Select(c => $"{assembly}: {c.Key} = {c.Value} is outside {range.First}–{range.Last}"));
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    private static List<(string Assembly, int First, int Last)> Ranges(string operations)
    {
        var section = operations[operations.IndexOf("## Log event ids", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 3, StringComparison.Ordinal)];
        return RangeRow().Matches(section)
            .Select(m => (m.Groups["assembly"].Value, int.Parse(m.Groups["first"].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups["last"].Value, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
    }

    [GeneratedRegex(@"(?:\bEventId\s*=\s*|new\s+EventId\(\s*)(?<id>EventIds\.\w+|\d+)")]
    private static partial Regex EventIdUse();

    [GeneratedRegex(@"public\s+const\s+int\s+(?<name>\w+)\s*=\s*(?<value>\d+)\s*;")]
    private static partial Regex Constant();

    [GeneratedRegex(@"^\|\s*(?<first>\d+)–(?<last>\d+)\s*\|\s*(?<assembly>Geo\.\w+)", RegexOptions.Multiline)]
    private static partial Regex RangeRow();
}
