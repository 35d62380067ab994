using System.Net;
using System.Text;
using Microsoft.Playwright;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>The inspector page at <c>/</c> in a real headless Chromium, against a server in this process.</summary>
public sealed partial class InspectorPageTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private Task<InspectorHost> StartAsync(bool registry = false, bool tokens = false) =>
        InspectorHost.StartAsync(browser.Require(), registry, tokens);

    private static ILocator Rows(IPage page) => page.Locator("#rows .message");

    [Fact]
    public async Task The_list_comes_from_the_registry_and_filters_by_prefix()
    {
        await using var host = await StartAsync(registry: true);
        foreach (var name in new[] { "orders/1", "orders/2", "users" })
        {
            await host.CreateAsync(name);
        }
        using (var delete = await host.Client.DeleteAsync("orders/2", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        await host.Page.GotoAsync("/");

        var items = host.Page.Locator("#stream-list > li");
        await Expect(items).ToHaveCountAsync(2);
        await Expect(host.Page.Locator("#list-source")).ToContainTextAsync("from the registry");
        // Each visible row gets its metadata with one HEAD.
        await Expect(items.First).ToContainTextAsync("application/json");
        await host.Page.FillAsync("#filter", "orders/");
        await Expect(items).ToHaveCountAsync(1);
        await Expect(items.First).ToContainTextAsync("orders/1");
        Assert.Empty(host.ConsoleErrors);
    }

    [Fact]
    public async Task The_list_follows_the_registry_live_and_shows_fork_sources()
    {
        await using var host = await StartAsync(registry: true);
        await host.CreateAsync("orders");
        await host.Page.GotoAsync("/");
        var items = host.Page.Locator("#stream-list > li");
        await Expect(items).ToHaveCountAsync(1);

        // Created elsewhere: appears in sorted place without a reload; the fork names its source (from the registry).
        await host.CreateAsync("audit", "text/plain");
        using (var fork = new HttpRequestMessage(HttpMethod.Put, "orders-copy"))
        {
            fork.Headers.Add("Stream-Forked-From", host.Server.StreamsUrl.AbsolutePath + "orders");
            using var created = await host.Client.SendAsync(fork, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        await Expect(items).ToHaveCountAsync(3);
        await Expect(items).ToContainTextAsync(["audit", "orders", "orders-copy"]);
        await Expect(items.Nth(2)).ToContainTextAsync("fork of orders");
        await Expect(host.Page.Locator("#list-source")).ToContainTextAsync("3 stream(s)");

        await items.Nth(2).ClickAsync();
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("Forked fromorders");

        // Deleted elsewhere: leaves the list, and the open view says so.
        using (var delete = await host.Client.DeleteAsync("orders-copy", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        await Expect(items).ToHaveCountAsync(2);
        await Expect(host.Page.Locator("#banner")).ToContainTextAsync("'orders-copy' was deleted");

        // Created and deleted within one registry batch: never shown, and nothing else goes.
        await host.AppendJsonAsync("__registry__", """
            [{"type":"stream","key":"ghost","value":{"path":"ghost","contentType":"text/plain","createdAt":0},"headers":{"operation":"insert"}},
             {"type":"stream","key":"ghost","headers":{"operation":"delete"}}]
            """);
        await host.CreateAsync("zeta");
        await Expect(items.Last).ToContainTextAsync("zeta");
        await Expect(items).ToHaveCountAsync(3);
        await Expect(items).ToContainTextAsync(["audit", "orders", "zeta"]);
        await Expect(host.Page.Locator("#list-source")).ToContainTextAsync("3 stream(s)");
        Assert.Empty(host.ConsoleErrors);
    }

    [Fact]
    public async Task Without_a_registry_an_opened_stream_is_remembered()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("notes", "text/plain");
        await host.AppendAsync("notes", Encoding.UTF8.GetBytes("first line\nsecond line\n"), "text/plain");

        await host.Page.GotoAsync("/");
        await Expect(host.Page.Locator("#list-source")).ToContainTextAsync("no registry");
        await host.Page.FillAsync("#open-name", "notes");
        await host.Page.PressAsync("#open-name", "Enter");

        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await Expect(Rows(host.Page).Nth(1)).ToContainTextAsync("second line");
        await host.Page.ReloadAsync();
        await Expect(host.Page.Locator("#stream-list > li")).ToContainTextAsync(["notes"]);
    }

    [Fact]
    public async Task A_json_stream_shows_one_message_per_row_pretty_printed_on_demand_and_filtered()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("events");
        await host.AppendJsonAsync("events", """[{"kind":"created","id":1},{"kind":"paid","id":1},{"kind":"created","id":2}]""");

        await host.Page.GotoAsync("/?stream=events");

        await Expect(Rows(host.Page)).ToHaveCountAsync(3);
        await Expect(Rows(host.Page).First).ToContainTextAsync("""{"kind":"created","id":1}""");
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("application/json");
        await Rows(host.Page).First.Locator(".msg").ClickAsync();
        await Expect(Rows(host.Page).First.Locator("pre")).ToHaveTextAsync("{\n  \"kind\": \"created\",\n  \"id\": 1\n}");
        await host.Page.FillAsync("#row-filter", "paid");
        await Expect(host.Page.Locator("#rows .message:not(.filtered)")).ToHaveCountAsync(1);
        Assert.Empty(host.ConsoleErrors);
    }

    [Fact]
    public async Task Load_more_pages_through_the_stream()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("big");
        var messages = string.Join(',', Enumerable.Range(0, 1200).Select(i => $$"""{"i":{{i}}}"""));
        await host.AppendJsonAsync("big", "[" + messages + "]");

        await host.Page.GotoAsync("/?stream=big");

        await Expect(Rows(host.Page)).ToHaveCountAsync(500);
        await host.Page.ClickAsync("#load-more");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1000);
        await host.Page.ClickAsync("#load-more");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1200);
        await Expect(Rows(host.Page).Last).ToContainTextAsync("""{"i":1199}""");
        await Expect(host.Page.Locator("#load-more")).ToBeHiddenAsync();
        await Expect(host.Page.Locator("#read-status")).ToContainTextAsync("Up to date");
    }

    [Fact]
    public async Task Opening_a_long_stream_reads_one_bounded_piece_not_the_whole_stream()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("long");
        // About 1.9 MiB: a catch-up GET from the start would return all of it; one SSE event holds at most 1 MiB.
        for (var batch = 0; batch < 4; batch++)
        {
            await host.AppendJsonAsync("long", "[" + string.Join(',', Enumerable.Range(batch * 10_000, 10_000).Select(i => $$"""{"i":{{i}},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxx"}""")) + "]");
        }
        var reads = new List<string>();
        host.Page.Request += (_, request) =>
        {
            if (request.Url.Contains("/long?", StringComparison.Ordinal) && request.Method == "GET")
            {
                reads.Add(request.Url);
            }
        };

        await host.Page.GotoAsync("/?stream=long");

        await Expect(Rows(host.Page)).ToHaveCountAsync(500);
        await Expect(host.Page.Locator("#load-more")).ToBeVisibleAsync();
        var read = Assert.Single(reads);
        Assert.Contains("live=sse", read, StringComparison.Ordinal);
        Assert.Contains("offset=-1", read, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Where_sse_is_refused_paging_falls_back_to_catch_up_reads()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("big");
        await host.AppendJsonAsync("big", "[" + string.Join(',', Enumerable.Range(0, 700).Select(i => $$"""{"i":{{i}}}""")) + "]");
        await host.Page.RouteAsync(url => url.Contains("live=sse", StringComparison.Ordinal), route => route.FulfillAsync(new() { Status = 502, Body = "no event streams here" }));

        await host.Page.GotoAsync("/?stream=big");

        await Expect(Rows(host.Page)).ToHaveCountAsync(500);
        await host.Page.ClickAsync("#load-more");
        await Expect(Rows(host.Page)).ToHaveCountAsync(700);
        await Expect(host.Page.Locator("#read-status")).ToContainTextAsync("Up to date");
        await Expect(host.Page.Locator("#banner")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task A_deep_link_reopens_the_view_at_its_offset()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("log");
        var afterFirst = await host.AppendJsonAsync("log", """{"n":1}""");
        await host.AppendJsonAsync("log", """[{"n":2},{"n":3}]""");

        await host.Page.GotoAsync($"/?stream=log&offset={afterFirst}");

        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await Expect(Rows(host.Page).First).ToContainTextAsync("""{"n":2}""");
        await Expect(host.Page.Locator("#offset-input")).ToHaveValueAsync(afterFirst);
        await Expect(Rows(host.Page).First.Locator(".offset")).ToContainTextAsync(afterFirst);
        Assert.Contains($"offset={afterFirst}", host.Page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_hex_view_shows_a_binary_stream_as_hex_and_ascii()
    {
        await using var host = await StartAsync();
        await host.CreateAsync("blob", "application/octet-stream");
        var bytes = Enumerable.Range(0, 16).Select(i => (byte)i).Concat("Hello, hex!"u8.ToArray()).ToArray();
        await host.AppendAsync("blob", bytes, "application/octet-stream");

        await host.Page.GotoAsync("/?stream=blob");

        await Expect(Rows(host.Page)).ToHaveCountAsync(2);
        await Expect(Rows(host.Page).First.Locator(".hex")).ToHaveTextAsync(
            "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|");
        await Expect(Rows(host.Page).Nth(1).Locator(".hex")).ToContainTextAsync("00000010  48 65 6c 6c 6f 2c 20 68  65 78 21");
        await Expect(Rows(host.Page).Nth(1).Locator(".hex")).ToContainTextAsync("|Hello, hex!|");
    }
}
