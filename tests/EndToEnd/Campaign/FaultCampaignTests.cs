using System.Globalization;

namespace Geo.EndToEnd.Campaign;

/// <summary>
/// The fault campaign's short profile (<see cref="FaultCampaign"/>): six seeded fault cycles, one of each family and a
/// second process fault, under writers through the edges; 0 lost acknowledged writes, 0 duplicate effects, a complete
/// conflict log, converged within 10 s of the last heal, 0 residency hits, nothing quarantined for the skewed clock.
/// The soak is the same test with more cycles and writes (docs/campaign.md).
/// </summary>
[Collection(GeoSystemCollection.Name)]
public sealed class FaultCampaignTests(GeoSystem system) : IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await system.RestoreAsync();

    public async ValueTask DisposeAsync() => await system.RestoreAsync();

    [Fact]
    public async Task A_seeded_campaign_of_process_network_and_data_store_faults_loses_nothing_and_converges()
    {
        var profile = CampaignProfile.FromEnvironment();
        var r = await new FaultCampaign(system, profile).RunAsync(TestContext.Current.CancellationToken);
        var cycles = r.CycleConvergence.Count == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
            $"; caught up after a heal under load (every 10th cycle): max {r.CycleConvergence.Max().TotalSeconds:0.0} s, median {r.CycleConvergence.Order().ElementAt(r.CycleConvergence.Count / 2).TotalSeconds:0.0} s");
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"seed {r.Seed}, {r.Faults.Count} fault cycles in {r.Duration.TotalSeconds:0} s: {r.AcknowledgedWrites} acknowledged writes ({r.Acknowledged} documents, "
            + $"{r.SharedAcknowledged} conditional writes of the shared key, {r.CounterAcknowledged} increments; {r.Unknown} without an answer, {r.Retries} retries); "
            + $"counter {r.CounterValue}; {r.OverwrittenConcurrently} shared writes overwritten concurrently, {r.ConflictEntries} conflict-log entries; "
            + $"{r.RefusedAmbiguously} shared writes answered 412 after a try without an answer or by a failover region, {r.AppliedThoughRefused} of them applied; "
            + $"converged {r.ConvergedAfterLastHeal?.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) ?? "never"} s after the last heal (writers drained in {r.WorkersDrained.TotalSeconds:0.0} s, the served check through both APIs took {r.ServedCheck.TotalSeconds:0.0} s){cycles}; slowest request {r.SlowestRequest.TotalSeconds:0.0} s; "
            + $"residency hits {r.ResidencyHits}; quarantined {r.Quarantined}; violations {r.Violations.Count}\nfaults: {string.Join(", ", r.Faults)}");
        TestContext.Current.SendDiagnosticMessage(summary);
        await File.AppendAllTextAsync(Path.Combine(AppContext.BaseDirectory, "campaign-figures.txt"), $"{DateTime.UtcNow:O} {summary}\n{string.Join('\n', r.Violations)}\n", TestContext.Current.CancellationToken);
        Assert.True(r.Violations.Count == 0, summary + "\n" + string.Join('\n', r.Violations));
        Assert.NotNull(r.ConvergedAfterLastHeal);
        Assert.True(r.Acknowledged > 20, summary);
        Assert.True(r.SharedAcknowledged > 5, summary);
    }
}
