using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Geo.Testing.Services;
using YamlDotNet.RepresentationModel;

namespace Geo.Observability;

/// <summary>
/// The alerting rules and the dashboard name only metrics the services really export: every service is scraped over
/// HTTP/1.1 (the gRPC services on their metrics port), and Geo's own instruments that have not counted anything yet (a
/// counter appears with its first increment) are read from their declarations in src/.
/// </summary>
[Collection(ObservedSystemCollection.Name)]
public sealed partial class MetricsTests(ObservedSystem system)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly HashSet<string> PromQlWords = new(StringComparer.Ordinal)
    {
        "and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan",
    };

    [Fact]
    public async Task Every_metric_the_rules_and_the_dashboard_name_is_exported_by_a_service()
    {
        await TrafficAsync();
        var scraped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var ((project, region), endpoint) in system.MetricsEndpoints)
        {
            using var http = ServiceClients.For(endpoint, TimeSpan.FromSeconds(10));
            var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);
            var families = TypeLine().Matches(text).Select(m => (Name: m.Groups[1].Value, Type: m.Groups[2].Value)).ToList();
            Assert.True(families.Count > 0, $"{project} of {region} at {endpoint}: no metrics");
            foreach (var (name, type) in families)
            {
                scraped.UnionWith(Series(name, type));
            }
        }

        var declared = DeclaredGeoInstruments();
        // The declarations are read right: every Geo instrument that reports without being counted (observables) was scraped.
        var observables = declared.Where(d => d.Observable).SelectMany(d => Series(d.Name, d.Type)).Where(n => !scraped.Contains(n)).ToList();
        Assert.True(observables.Count == 0, "declared in src/ but not exported: " + string.Join(", ", observables));

        var exported = scraped.Union(declared.SelectMany(d => Series(d.Name, d.Type))).ToHashSet(StringComparer.Ordinal);
        var referenced = ReferencedMetrics();
        Assert.True(referenced.Count > 10, "found too few metric references: " + string.Join(", ", referenced.Keys));
        var missing = referenced.Where(r => !exported.Contains(r.Key)).Select(r => $"{r.Key} (in {string.Join(", ", r.Value)})").ToList();
        Assert.True(missing.Count == 0, "referenced but exported by no service:\n" + string.Join('\n', missing));
    }

    // The request paths the rules look at: a user, a write, two reads (a miss, then a hit), replication to the peer.
    private async Task TrafficAsync()
    {
        using var create = await system.Edge.PostAsync(new Uri("/v1/users", UriKind.Relative),
            new StringContent("{\"residency\":\"eu\",\"homeRegion\":\"eu-west\"}", Encoding.UTF8, "application/json"), Ct);
        create.EnsureSuccessStatusCode();
        using var user = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct));
        var id = user.RootElement.GetProperty("userId").GetString();
        using var put = await system.Edge.PutAsync(new Uri($"/v1/users/{id}/docs/notes/m", UriKind.Relative),
            new StringContent("{\"m\":1}", Encoding.UTF8, "application/json"), Ct);
        put.EnsureSuccessStatusCode();
        for (var i = 0; i < 2; i++)
        {
            using var get = await system.Edge.GetAsync(new Uri($"/v1/users/{id}/docs/notes/m", UriKind.Relative), Ct);
            get.EnsureSuccessStatusCode();
        }
    }

    /// <summary>The series names a family contributes (a histogram's buckets, count and sum).</summary>
    private static IEnumerable<string> Series(string name, string type) => type == "histogram"
        ? [name + "_bucket", name + "_count", name + "_sum"]
        : [name];

    private sealed record Declared(string Name, string Type, bool Observable);

    /// <summary>Geo's instruments from their <c>Create…&lt;T&gt;("geo.…")</c> calls, named as the Prometheus exporter names them.</summary>
    private static List<Declared> DeclaredGeoInstruments()
    {
        var src = Path.Combine(ServiceProcess.RepositoryRoot(), "src");
        var declared = new List<Declared>();
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal)))
        {
            foreach (var statement in File.ReadAllText(file).Split(';'))
            {
                var m = Instrument().Match(statement);
                if (!m.Success)
                {
                    continue;
                }

                var kind = m.Groups["kind"].Value;
                var unit = Unit().Matches(statement[(m.Index + m.Length)..]).Select(u => u.Groups[1].Value).FirstOrDefault(IsUnit);
                var name = m.Groups["name"].Value.Replace('.', '_') + unit switch
                {
                    "s" => "_seconds",
                    "ms" => "_milliseconds",
                    "By" => "_bytes",
                    _ => "",
                };
                var (type, suffix) = kind switch
                {
                    "Counter" or "ObservableCounter" => ("counter", "_total"),
                    "Histogram" => ("histogram", ""),
                    _ => ("gauge", ""),
                };
                declared.Add(new Declared(name + suffix, type, kind.StartsWith("Observable", StringComparison.Ordinal)));
            }
        }

        Assert.True(declared.Count >= 10, $"found only {declared.Count} Geo instruments in {src}");
        return declared;

        static bool IsUnit(string text) => text is "s" or "ms" or "By" or "1" || (text.StartsWith('{') && text.EndsWith('}'));
    }

    /// <summary>Every metric name in the rules' and the dashboard's queries, with where it was found.</summary>
    private static Dictionary<string, SortedSet<string>> ReferencedMetrics()
    {
        var root = ServiceProcess.RepositoryRoot();
        var queries = new List<(string Where, string Query)>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "ops", "prometheus", "rules"), "*.yml"))
        {
            var yaml = new YamlStream();
            using (var reader = new StreamReader(file))
            {
                yaml.Load(reader);
            }

            foreach (YamlMappingNode group in (YamlSequenceNode)((YamlMappingNode)yaml.Documents[0].RootNode)["groups"])
            {
                foreach (YamlMappingNode rule in (YamlSequenceNode)group["rules"])
                {
                    var name = rule.Children.TryGetValue("alert", out var a) ? a.ToString() : rule["record"].ToString();
                    queries.Add((name, rule["expr"].ToString()));
                }
            }
        }

        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "ops", "grafana", "geo.json")));
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
        {
            if (panel.TryGetProperty("targets", out var targets))
            {
                foreach (var target in targets.EnumerateArray())
                {
                    queries.Add(("dashboard: " + panel.GetProperty("title").GetString(), target.GetProperty("expr").GetString()!));
                }
            }
        }

        var referenced = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var (where, query) in queries)
        {
            foreach (var metric in MetricNames(query))
            {
                (referenced.TryGetValue(metric, out var set) ? set : referenced[metric] = new SortedSet<string>(StringComparer.Ordinal)).Add(where);
            }
        }

        return referenced;
    }

    /// <summary>The metric names of a PromQL expression: identifiers that are not functions, keywords or label names.</summary>
    internal static IEnumerable<string> MetricNames(string query)
    {
        var bare = Strings().Replace(query, "\"\"");
        bare = Braces().Replace(bare, "");
        bare = Grouping().Replace(bare, "");
        bare = Ranges().Replace(bare, "");
        return Identifier().Matches(bare).Where(m => !PromQlWords.Contains(m.Value) && !(m.Index + m.Length < bare.Length && FunctionCall().IsMatch(bare[(m.Index + m.Length)..])))
            .Select(m => m.Value).Distinct(StringComparer.Ordinal);
    }

    [Fact]
    public void Metric_names_are_read_from_PromQL_without_functions_keywords_or_labels()
    {
        var names = MetricNames("sum by (tier, region) (rate(a_total{x=~\"5..\", route!~\"/h\"}[5m])) / on (tier) group_left() max(b_count offset 10m) > 0.001 and c").ToList();
        Assert.Equal(["a_total", "b_count", "c"], names);
    }

    [GeneratedRegex(@"^# TYPE (\S+) (\S+)$", RegexOptions.Multiline)]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"Create(?<kind>Counter|UpDownCounter|Histogram|Gauge|ObservableCounter|ObservableUpDownCounter|ObservableGauge)<\w+>\(\s*""(?<name>geo\.[a-z0-9_.]+)""")]
    private static partial Regex Instrument();

    [GeneratedRegex(@"""([^""]*)""")]
    private static partial Regex Unit();

    [GeneratedRegex(@"""(?:[^""\\]|\\.)*""")]
    private static partial Regex Strings();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Ranges();

    [GeneratedRegex(@"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"^\s*\(")]
    private static partial Regex FunctionCall();
}
