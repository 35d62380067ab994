using System.Text;
using Microsoft.Playwright;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>
/// The live tail: EventSource without a token, a streaming fetch with one; pause and resume. The page re-reads nothing on
/// a timer, so a row that appears after an append came over the live request. How fast is a measurement
/// (InspectorMeasurements), not an assertion: a time limit here would depend on how loaded the machine is.
/// </summary>
public sealed class InspectorLiveTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private static ILocator Rows(IPage page) => page.Locator("#rows .message");

    [Fact]
    public async Task The_live_tail_shows_an_append_without_a_token()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("tail");
        await host.AppendJsonAsync("tail", """{"n":1}""");

        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (SSE).");

        await host.AppendJsonAsync("tail", """{"n":2}""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await Expect(Rows(host.Page).Last).ToContainTextAsync("""{"n":2}""");
        await Expect(host.Page.Locator("#stats")).ToContainTextAsync("2 message(s)");
        Assert.Empty(host.ConsoleErrors);
    }

    [Fact]
    public async Task The_live_tail_shows_an_append_with_a_token()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), tokens: true);
        await host.CreateAsync("tail");
        await host.Page.AddInitScriptAsync($"sessionStorage.setItem('ds-inspector-token', '{InspectorHost.ReadToken}')");

        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (SSE over fetch).");

        await host.AppendJsonAsync("tail", """{"n":1}""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await host.AppendJsonAsync("tail", """[{"n":2},{"n":3}]""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(3);
        await Expect(host.Page.Locator("#token-dialog")).Not.ToBeVisibleAsync();
    }

    [Fact]
    public async Task When_sse_is_refused_the_tail_falls_back_to_long_poll_and_shows_an_append()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("tail");
        await host.AppendJsonAsync("tail", """{"n":1}""");
        // A proxy (or an old server) that answers every SSE request with an error.
        await host.Page.RouteAsync(url => url.Contains("live=sse", StringComparison.Ordinal), route => route.FulfillAsync(new() { Status = 502, Body = "no event streams here" }));

        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (long-poll).");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);

        await host.AppendJsonAsync("tail", """{"n":2}""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await host.AppendJsonAsync("tail", """[{"n":3},{"n":4}]""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(4);
        await Expect(Rows(host.Page).Last).ToContainTextAsync("""{"n":4}""");
        await Expect(host.Page.Locator("#banner")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task When_a_proxy_holds_the_sse_response_the_tail_falls_back_to_long_poll()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("tail", "text/plain");
        // A buffering proxy: the SSE request gets no answer at all, so the server's first control event never arrives.
        var held = new List<IRoute>();
        await host.Page.RouteAsync(url => url.Contains("live=sse", StringComparison.Ordinal), held.Add);

        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (long-poll).");
        Assert.NotEmpty(held);

        await host.AppendAsync("tail", Encoding.UTF8.GetBytes("one\n"), "text/plain");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(Rows(host.Page).First).ToContainTextAsync("one");
    }

    [Fact]
    public async Task With_a_token_a_refused_sse_fetch_falls_back_to_long_poll()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), tokens: true);
        await host.CreateAsync("tail");
        await host.Page.AddInitScriptAsync($"sessionStorage.setItem('ds-inspector-token', '{InspectorHost.ReadToken}')");
        await host.Page.RouteAsync(url => url.Contains("live=sse", StringComparison.Ordinal), route => route.AbortAsync());

        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (long-poll).");

        await host.AppendJsonAsync("tail", """{"n":1}""");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(host.Page.Locator("#token-dialog")).Not.ToBeVisibleAsync();
    }

    [Fact]
    public async Task Past_the_row_cap_the_oldest_rows_are_dropped_with_a_note()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("busy");
        await host.AppendJsonAsync("busy", "[" + string.Join(',', Enumerable.Range(0, 5100).Select(i => $$"""{"i":{{i}}}""")) + "]");

        await host.Page.GotoAsync("/?stream=busy&live=1");

        await Expect(host.Page.Locator("#cap-note")).ToContainTextAsync("Showing the newest 5000 rows; 100 older row(s) were dropped");
        await Expect(Rows(host.Page)).ToHaveCountAsync(5000);
        await Expect(Rows(host.Page).First).ToContainTextAsync("""{"i":100}""");
        await Expect(host.Page.Locator("#stats")).ToContainTextAsync("5100 message(s)");
    }

    [Fact]
    public async Task Pause_stops_the_tail_and_resume_continues_where_it_stopped()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("tail", "text/plain");
        await host.AppendAsync("tail", Encoding.UTF8.GetBytes("one\n"), "text/plain");
        await host.Page.GotoAsync("/?stream=tail&live=1");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(host.Page.Locator("#read-status")).ToHaveTextAsync("Live (SSE).");

        // Pausing closes the connection: the page then has no open live request that could deliver the next append.
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Page.RequestFailed += (_, request) =>
        {
            if (request.Url.Contains("live=sse", StringComparison.Ordinal))
            {
                closed.TrySetResult();
            }
        };
        await host.Page.ClickAsync("#pause-button");
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await Expect(host.Page.Locator("#pause-button")).ToHaveTextAsync("Resume");
        await host.AppendAsync("tail", Encoding.UTF8.GetBytes("two\n"), "text/plain");
        await Expect(host.Page.Locator("#stats")).ToContainTextAsync("paused");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);

        await host.Page.ClickAsync("#pause-button");
        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await Expect(Rows(host.Page).Last).ToContainTextAsync("two");
    }
}
