using System.Net;
using Microsoft.Playwright;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>Appends, create, delete and the token prompt.</summary>
public sealed class InspectorWriteTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private static ILocator Rows(IPage page) => page.Locator("#rows .message");

    [Fact]
    public async Task Invalid_json_is_refused_in_the_page_and_valid_json_is_appended()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("events");
        var tail = await host.TailAsync("events");
        await host.Page.GotoAsync("/?stream=events");
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("application/json");

        await host.Page.FillAsync("#append-body", "{\"broken\": ");
        await host.Page.ClickAsync("#append-button");
        await Expect(host.Page.Locator("#append-result")).ToContainTextAsync("Not valid JSON, nothing was sent");
        Assert.Equal(tail, await host.TailAsync("events"));

        // The server's own 400 is shown too (an empty JSON array is refused by the server, not the page).
        await host.Page.FillAsync("#append-body", "[]");
        await host.Page.ClickAsync("#append-button");
        await Expect(host.Page.Locator("#append-result")).ToContainTextAsync("The server refused the append: 400");

        await host.Page.FillAsync("#append-body", """{"ok": true}""");
        await host.Page.ClickAsync("#append-button");
        await Expect(host.Page.Locator("#append-result")).ToContainTextAsync("Appended");
        Assert.NotEqual(tail, await host.TailAsync("events"));
    }

    [Fact]
    public async Task Delete_asks_for_confirmation_first()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), registry: true);
        await host.CreateAsync("doomed");
        await host.Page.GotoAsync("/?stream=doomed");
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("application/json");

        await host.Page.ClickAsync("#delete-button");
        await Expect(host.Page.Locator("#confirm-dialog")).ToBeVisibleAsync();
        await host.Page.ClickAsync("#confirm-cancel");
        await Expect(host.Page.Locator("#confirm-dialog")).Not.ToBeVisibleAsync();
        Assert.Equal(HttpStatusCode.OK, await host.HeadAsync("doomed"));

        await host.Page.ClickAsync("#delete-button");
        await host.Page.ClickAsync("#confirm-ok");
        await Expect(host.Page.Locator("#banner")).ToHaveTextAsync("Deleted 'doomed'.");
        Assert.Equal(HttpStatusCode.NotFound, await host.HeadAsync("doomed"));
        await Expect(host.Page.Locator("#stream-list > li")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Create_from_the_page_opens_the_new_stream()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.Page.GotoAsync("/");
        await host.Page.ClickAsync("#create-panel summary");
        await host.Page.FillAsync("#create-name", "made/here");
        await host.Page.SelectOptionAsync("#create-type", "text/plain");
        await host.Page.ClickAsync("#create-form button[type=submit]");

        await Expect(host.Page.Locator("#view-name")).ToHaveTextAsync("made/here");
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("text/plain");
        Assert.Equal(HttpStatusCode.OK, await host.HeadAsync("made/here"));
    }

    [Fact]
    public async Task A_401_is_answered_by_entering_a_token()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), tokens: true);
        await host.CreateAsync("secret");
        await host.AppendJsonAsync("secret", """{"hidden":true}""");

        await host.Page.GotoAsync("/?stream=secret");

        await Expect(host.Page.Locator("#token-dialog")).ToBeVisibleAsync();
        await Expect(host.Page.Locator("#token-reason")).ToContainTextAsync("401 Unauthorized");
        await host.Page.FillAsync("#token-input", InspectorHost.ReadToken);
        await host.Page.ClickAsync("#token-ok");
        await Expect(Rows(host.Page)).ToHaveCountAsync(1);
        await Expect(Rows(host.Page).First).ToContainTextAsync("""{"hidden":true}""");
        Assert.Equal(InspectorHost.ReadToken, await host.Page.EvaluateAsync<string>("sessionStorage.getItem('ds-inspector-token')"));
    }

    [Fact]
    public async Task A_read_only_token_gets_a_403_explained_and_the_write_controls_disabled()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), tokens: true);
        await host.CreateAsync("events");
        await host.Page.AddInitScriptAsync($"sessionStorage.setItem('ds-inspector-token', '{InspectorHost.ReadToken}')");
        await host.Page.GotoAsync("/?stream=events");
        await Expect(host.Page.Locator("#meta")).ToContainTextAsync("application/json");

        await host.Page.FillAsync("#append-body", """{"n":1}""");
        await host.Page.ClickAsync("#append-button");

        await Expect(host.Page.Locator("#append-result")).ToContainTextAsync("403 Forbidden");
        await Expect(host.Page.Locator("#write-note")).ToContainTextAsync("may only read");
        await Expect(host.Page.Locator("#append-button")).ToBeDisabledAsync();
        await Expect(host.Page.Locator("#delete-button")).ToBeDisabledAsync();
    }
}
