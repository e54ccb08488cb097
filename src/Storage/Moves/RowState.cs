namespace Geo.Storage.Moves;

/// <summary>One row's identity and what decides which of two copies is newer.</summary>
public sealed record RowState(string Id, string UserId, long Hlc, string Origin, string Value, long Incr, long Decr)
{
    public bool IsNewerThan(RowState other) => Hlc > other.Hlc || (Hlc == other.Hlc && string.CompareOrdinal(Origin, other.Origin) > 0);
}

/// <summary>How a move's verification judges the rows of its buckets on two shards, with the replication merge rules.</summary>
public static class RowComparison
{
    /// <summary>
    /// Row by row: every row of <paramref name="expected"/> must be on <paramref name="actual"/> as it is, or superseded
    /// there (a newer version, a larger counter component, or a newer erase of the user). Returns the problems, at most 20.
    /// </summary>
    public static (int Same, int Newer, List<string> Problems) Compare(Dictionary<string, RowState> expected, Dictionary<string, RowState> actual)
    {
        int same = 0, newer = 0;
        var problems = new List<string>();
        foreach (var (id, row) in expected)
        {
            actual.TryGetValue(id, out var there);
            var erasedAfter = actual.TryGetValue("e\u001f" + row.UserId, out var erase) && erase.IsNewerThan(row);
            var verdict = Verdict(row, there, erasedAfter);
            switch (verdict)
            {
                case 0:
                    same++;
                    break;
                case 1:
                    newer++;
                    break;
                default:
                    if (problems.Count < 20)
                    {
                        problems.Add(there is null ? $"missing {Describe(id)}" : $"{Describe(id)}: expected {row.Hlc}@{row.Origin} {row.Incr}/{row.Decr}, found {there.Hlc}@{there.Origin} {there.Incr}/{there.Decr}");
                    }
                    else
                    {
                        problems[^1] = "... and more";
                    }

                    break;
            }
        }

        return (same, newer, problems);

        static string Describe(string id) => id.Replace('\u001f', '/');
    }

    // 0: the same; 1: superseded by a newer value; -1: missing or older.
    private static int Verdict(RowState row, RowState? there, bool erasedAfter)
    {
        if (there is null)
        {
            return erasedAfter && row.Id[0] == 'c' ? 1 : -1; // an erase deletes counter components
        }

        if (row.Id[0] == 'c')
        {
            return there.Incr == row.Incr && there.Decr == row.Decr ? 0 : (there.Incr >= row.Incr && there.Decr >= row.Decr) || erasedAfter ? 1 : -1;
        }

        if (there.Hlc == row.Hlc && there.Origin == row.Origin)
        {
            return row.Id[0] == 'e' || there.Value == row.Value ? 0 : -1;
        }

        return there.IsNewerThan(row) ? 1 : -1;
    }
}
