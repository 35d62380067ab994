using DurableStreams.Core.Retention;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>The inspector on a stream whose front retention dropped (issue 18).</summary>
public sealed partial class InspectorPageTests
{
    private static readonly RetentionPolicy KeepOneMessage = new(null, 10);

    [Fact]
    public async Task The_stream_view_shows_the_retained_start_and_reads_what_remains()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), retention: new RetentionPolicies([new RetentionRule("**", KeepOneMessage)]));
        await host.CreateAsync("log");
        await host.AppendJsonAsync("log", """{"n":1}""");
        var afterSecond = await host.AppendJsonAsync("log", """{"n":2}""");
        await host.AppendJsonAsync("log", """{"n":3}""");
        var trimmed = await ((IStreamRetention)host.RetentionStore).ApplyRetentionAsync("log", KeepOneMessage, TestContext.Current.CancellationToken);
        Assert.Equal(afterSecond, trimmed.RetainedStart.ToString());

        await host.Page.GotoAsync("/?stream=log");

        await Expect(host.Page.Locator("#meta")).ToContainTextAsync($"Retained start{afterSecond}");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(Rows(host.Page).First).ToContainTextAsync("""{"n":3}""");
        await Expect(host.Page.Locator("#banner")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task A_deep_link_below_the_retained_start_says_so_instead_of_breaking()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), retention: new RetentionPolicies([new RetentionRule("**", KeepOneMessage)]));
        await host.CreateAsync("log");
        var afterFirst = await host.AppendJsonAsync("log", """{"n":1}""");
        var afterSecond = await host.AppendJsonAsync("log", """{"n":2}""");
        await host.AppendJsonAsync("log", """{"n":3}""");
        await ((IStreamRetention)host.RetentionStore).ApplyRetentionAsync("log", KeepOneMessage, TestContext.Current.CancellationToken);

        await host.Page.GotoAsync($"/?stream=log&offset={afterFirst}");

        await Expect(host.Page.Locator("#banner")).ToContainTextAsync($"is before the stream's retained start {afterSecond} (retention or compaction dropped that data)");
        await Expect(Rows(host.Page)).ToHaveCountAsync(0);
        Assert.Empty(host.ConsoleErrors);
    }
}
