namespace Geo.EndToEnd.Campaign;

/// <summary>
/// The fault campaign's short profile (<see cref="FaultCampaign"/>): a few seeded fault cycles under writers through the
/// edges; 0 lost acknowledged writes, 0 duplicate effects, converged within 10 s of the last heal, 0 residency hits.
/// The soak is the same test with more cycles: <c>GEO_CAMPAIGN_CYCLES=100 GEO_CAMPAIGN_SEED=&lt;n&gt;</c> (docs/campaign.md).
/// </summary>
[Collection(GeoSystemCollection.Name)]
public sealed class FaultCampaignTests(GeoSystem system) : IAsyncLifetime
{
    public async ValueTask InitializeAsync() => await system.RestoreAsync();

    public async ValueTask DisposeAsync() => await system.RestoreAsync();

    [Fact]
    public async Task A_seeded_campaign_of_kills_pauses_and_restarts_loses_nothing_and_converges()
    {
        var profile = CampaignProfile.FromEnvironment();
        var result = await new FaultCampaign(system, profile).RunAsync(TestContext.Current.CancellationToken);
        var summary = $"seed {result.Seed}, faults [{string.Join(", ", result.Faults)}]: {result.Acknowledged} acknowledged writes "
            + $"({result.Unknown} without an answer after 8 tries, {result.Retries} retries), counter {result.CounterValue} for "
            + $"{result.CounterAcknowledged} acknowledged increments, converged {result.ConvergedAfterLastHeal?.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) ?? "never"} s after the last heal";
        TestContext.Current.SendDiagnosticMessage(summary);
        Assert.True(result.Violations.Count == 0, summary + "\n" + string.Join('\n', result.Violations));
        Assert.NotNull(result.ConvergedAfterLastHeal);
        Assert.True(result.Acknowledged > 20, summary);
    }
}
