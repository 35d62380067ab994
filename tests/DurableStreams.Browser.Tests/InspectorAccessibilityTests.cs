using Microsoft.Playwright;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>The in-page accessibility check in light and dark, the tab order, and a keyboard-only session.</summary>
public sealed class InspectorAccessibilityTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private static ILocator Rows(IPage page) => page.Locator("#rows .message");

    private static async Task<InspectorHost> StartWithBigStreamAsync(IBrowser browser)
    {
        var host = await InspectorHost.StartAsync(browser, registry: true);
        await host.CreateAsync("big");
        await host.CreateAsync("notes", "text/plain");
        await host.AppendJsonAsync("big", "[" + string.Join(',', Enumerable.Range(0, 1200).Select(i => $$"""{"i":{{i}}}""")) + "]");
        return host;
    }

    [Theory]
    [InlineData(ColorScheme.Light)]
    [InlineData(ColorScheme.Dark)]
    public async Task The_page_passes_the_accessibility_check(ColorScheme scheme)
    {
        await using var host = await StartWithBigStreamAsync(browser.Require());
        await host.Page.EmulateMediaAsync(new() { ColorScheme = scheme });

        await host.Page.GotoAsync("/");
        await Expect(host.Page.Locator("#stream-list > li")).ToHaveCountAsync(2);
        AssertNoProblems(await AccessibilityCheck.RunAsync(host.Page));

        await host.Page.GotoAsync("/?stream=big");
        await Expect(Rows(host.Page)).ToHaveCountAsync(500);
        await host.Page.Locator("#create-panel > summary").ClickAsync();
        await host.Page.FillAsync("#append-body", "not json");
        await host.Page.ClickAsync("#append-button");
        await Expect(host.Page.Locator("#append-result")).ToContainTextAsync("Not valid JSON");
        AssertNoProblems(await AccessibilityCheck.RunAsync(host.Page));
    }

    [Fact]
    public async Task Tab_visits_the_controls_in_document_order_and_the_lists_are_one_stop_each()
    {
        await using var host = await StartWithBigStreamAsync(browser.Require());
        await host.Page.GotoAsync("/?stream=big");
        await Expect(Rows(host.Page)).ToHaveCountAsync(500);

        var stops = await AccessibilityCheck.TabStopsAsync(host.Page);

        Assert.All(stops, s => Assert.True(s.Visible, $"{s.Element} takes focus but is not visible"));
        Assert.Equal(stops.Select(s => s.Index).Order(), stops.Select(s => s.Index));
        // 500 rows and 2 streams, yet the page has a few dozen stops: each list is one, arrow keys move inside it.
        Assert.InRange(stops.Count, 15, 40);
        Assert.Contains(stops, s => s.Element == "div#rows");
        Assert.Contains(stops, s => s.Element == "button#load-more");
    }

    [Fact]
    public async Task A_keyboard_alone_opens_a_stream_reads_rows_loads_more_and_pauses_and_resumes_the_tail()
    {
        await using var host = await StartWithBigStreamAsync(browser.Require());
        var page = host.Page;
        await page.GotoAsync("/");
        await Expect(page.Locator("#stream-list > li")).ToHaveCountAsync(2);

        // The streams list: one tab stop, arrows move, Enter opens.
        await TabToAsync(page, "#stream-list button");
        await Expect(page.Locator(":focus")).ToContainTextAsync("big");
        await page.Keyboard.PressAsync("ArrowDown");
        await Expect(page.Locator(":focus")).ToContainTextAsync("notes");
        await page.Keyboard.PressAsync("ArrowUp");
        await page.Keyboard.PressAsync("Enter");
        await Expect(Rows(page)).ToHaveCountAsync(500);

        // The rows: one tab stop, ArrowDown to the first message, Enter expands it, ArrowLeft to its offset button.
        await TabToAsync(page, "#rows");
        await page.Keyboard.PressAsync("ArrowDown");
        await page.Keyboard.PressAsync("ArrowDown");
        await Expect(page.Locator(":focus")).ToHaveTextAsync("""{"i":1}""");
        await page.Keyboard.PressAsync("Enter");
        await Expect(Rows(page).Nth(1).Locator("pre")).ToHaveTextAsync("{\n  \"i\": 1\n}");
        await page.Keyboard.PressAsync("ArrowLeft");
        await Expect(page.Locator(":focus")).ToHaveClassAsync("offset");

        // Tab leaves the rows for Load more.
        await TabToAsync(page, "#load-more", max: 3);
        await page.Keyboard.PressAsync("Enter");
        await Expect(Rows(page)).ToHaveCountAsync(1000);

        // Live tail on, pause, resume.
        await ShiftTabToAsync(page, "#live-toggle");
        await page.Keyboard.PressAsync("Space");
        await Expect(page.Locator("#read-status")).ToHaveTextAsync("Live (SSE).");
        await Expect(Rows(page)).ToHaveCountAsync(1200);
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("#pause-button")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#pause-button")).ToHaveTextAsync("Resume");
        await host.AppendJsonAsync("big", """{"i":1200}""");
        await Expect(page.Locator("#stats")).ToContainTextAsync("paused");
        await page.Keyboard.PressAsync("Enter");
        await Expect(Rows(page)).ToHaveCountAsync(1201);
        await Expect(page.Locator("#pause-button")).ToHaveTextAsync("Pause");
        Assert.Empty(host.ConsoleErrors);
    }

    private static void AssertNoProblems(string[] problems) => Assert.True(problems.Length == 0, "Accessibility problems:\n" + string.Join('\n', problems));

    private static async Task TabToAsync(IPage page, string selector, int max = 40, string key = "Tab")
    {
        for (var i = 0; i < max; i++)
        {
            await page.Keyboard.PressAsync(key);
            if (await page.EvaluateAsync<bool>("(s) => document.activeElement?.matches(s) ?? false", selector))
            {
                return;
            }
        }
        Assert.Fail($"{selector} not reached with {max} presses of {key}");
    }

    private static Task ShiftTabToAsync(IPage page, string selector) => TabToAsync(page, selector, key: "Shift+Tab");
}
