using System.Globalization;

namespace Geo.Cli.Checkpoints;

/// <summary>One sample of a Prometheus text exposition: metric name, labels, value.</summary>
internal sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string? Label(string name) => Labels.TryGetValue(name, out var v) ? v : null;
}

/// <summary>Reads the Prometheus text format the services serve on <c>/metrics</c> (comments skipped).</summary>
internal static class PromText
{
    public static List<PromSample> Parse(string text)
    {
        var samples = new List<PromSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string name;
            string rest;
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (brace >= 0 && (space < 0 || brace < space))
            {
                name = line[..brace];
                var i = brace + 1;
                while (i < line.Length && line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq].Trim(' ', ',');
                    var value = new System.Text.StringBuilder();
                    var j = eq + 2; // past ="
                    for (; j < line.Length && line[j] != '"'; j++)
                    {
                        if (line[j] == '\\' && j + 1 < line.Length)
                        {
                            j++;
                            value.Append(line[j] == 'n' ? '\n' : line[j]);
                        }
                        else
                        {
                            value.Append(line[j]);
                        }
                    }

                    labels[key] = value.ToString();
                    i = j + 1;
                    while (i < line.Length && line[i] is ',' or ' ')
                    {
                        i++;
                    }
                }

                rest = line[(i + 1)..].Trim();
            }
            else if (space > 0)
            {
                name = line[..space];
                rest = line[space..].Trim();
            }
            else
            {
                continue;
            }

            var valueText = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (valueText is not null && double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                samples.Add(new PromSample(name, labels, number));
            }
        }

        return samples;
    }
}
