using System.Diagnostics;
using System.Globalization;
using System.Text;
using DurableStreams.Core;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace DurableStreams.Browser.Tests;

/// <summary>
/// One-off measurements and the README screenshot, not assertions on time: run explicitly with
/// <c>artifacts/bin/DurableStreams.Browser.Tests/release/DurableStreams.Browser.Tests -explicit only</c> (after a
/// Release build; add <c>-method "*First_page*"</c> for the timings alone). Results go to the test output and
/// <c>artifacts/inspector-measurements.txt</c>; the screenshot to <c>docs/inspector.png</c>.
/// </summary>
public sealed class InspectorMeasurements(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Explicit = true)]
    public async Task Screenshot_of_the_stream_view()
    {
        await using var host = await InspectorHost.StartAsync(browser.Require(), registry: true);
        await host.CreateAsync("orders/2026-12", "application/json");
        await host.CreateAsync("logs/api", "text/plain");
        await host.CreateAsync("uploads/blob", "application/octet-stream");
        var events = new StringBuilder("[");
        string[] kinds = ["created", "paid", "packed", "shipped"];
        for (var i = 0; i < 24; i++)
        {
            events.Append(CultureInfo.InvariantCulture, $$"""{"order":{{1000 + (i / 4)}},"event":"{{kinds[i % 4]}}","at":"2026-12-06T04:{{10 + i:00}}:00Z","items":{{1 + (i % 3)}},"total":{{(i + 1) * 12.5}}},""");
        }
        events.Length--;
        events.Append(']');
        await host.AppendJsonAsync("orders/2026-12", events.ToString());

        await host.Page.GotoAsync("/?stream=orders%2F2026-12&live=1");
        await Expect(host.Page.Locator("#rows .message")).ToHaveCountAsync(24);
        await host.Page.Locator("#rows .message").Nth(1).Locator(".msg").ClickAsync();
        await host.AppendJsonAsync("orders/2026-12", """{"order":1006,"event":"created","at":"2026-12-06T04:34:00Z","items":2,"total":25}""");
        await Expect(host.Page.Locator("#rows .message")).ToHaveCountAsync(25);
        await host.Page.ScreenshotAsync(new() { Path = Path.Combine(RepositoryRoot(), "docs", "inspector.png") });
    }

    [Fact(Explicit = true)]
    public async Task First_page_of_a_million_message_stream_and_a_1000_per_second_tail()
    {
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores; load average before: {(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a")}");
        await using var host = await InspectorHost.StartAsync(browser.Require());
        await host.CreateAsync("million");
        for (var batch = 0; batch < 100; batch++)
        {
            var body = new StringBuilder("[");
            for (var i = 0; i < 10_000; i++)
            {
                var n = (batch * 10_000) + i;
                body.Append(CultureInfo.InvariantCulture, $$"""{"n":{{n}},"kind":"reading","value":{{n % 977}}},""");
            }
            body.Length--;
            body.Append(']');
            var result = await host.Server.Store.AppendAsync("million", new AppendRequest { ContentType = "application/json", Body = Encoding.UTF8.GetBytes(body.ToString()) }, Ct);
            Assert.Equal(AppendStatus.Appended, result.Status);
        }

        for (var run = 0; run < 3; run++)
        {
            var page = await host.Context.NewPageAsync();
            var watch = Stopwatch.StartNew();
            await page.GotoAsync("/?stream=million");
            await Expect(page.Locator("#rows .message")).ToHaveCountAsync(500, new() { Timeout = 30_000 });
            var wall = watch.Elapsed.TotalMilliseconds;
            var sinceNavigation = await page.EvaluateAsync<double>("performance.now()");
            report.AppendLine(CultureInfo.InvariantCulture, $"first page (500 rows) of 1,000,000 JSON messages, run {run + 1}: {wall:F0} ms from GotoAsync to 500 rows (page clock {sinceNavigation:F0} ms since navigation start)");
            await page.CloseAsync();
        }

        await host.CreateAsync("rate");
        var tail = await host.Context.NewPageAsync();
        await tail.AddInitScriptAsync("""
            window.__longTasks = []; window.__frames = 0;
            new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); }).observe({ type: 'longtask', buffered: true });
            const tick = () => { window.__frames++; requestAnimationFrame(tick); }; requestAnimationFrame(tick);
            """);
        await tail.GotoAsync("/?stream=rate&live=1");
        await Expect(tail.Locator("#read-status")).ToHaveTextAsync("Live (SSE).");
        await tail.EvaluateAsync("() => { window.__frames = 0; window.__longTasks = []; window.__start = performance.now(); }");
        var seconds = 10;
        var sentTotal = 0;
        using (var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10)))
        {
            var sent = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
            {
                // Catch up to 1,000 messages per second of elapsed time, ten or more per append.
                var due = (int)(clock.Elapsed.TotalSeconds * 1000) - sent;
                if (due > 0)
                {
                    var body = "[" + string.Join(',', Enumerable.Range(sent, due).Select(n => $$"""{"n":{{n}},"kind":"tick"}""")) + "]";
                    await host.AppendJsonAsync("rate", body);
                    sent += due;
                }
                await timer.WaitForNextTickAsync(Ct);
            }
            sentTotal = sent;
            report.AppendLine(CultureInfo.InvariantCulture, $"live tail: {sent} messages appended in {clock.Elapsed.TotalSeconds:F1} s ({sent / clock.Elapsed.TotalSeconds:F0}/s)");
        }
        await Expect(tail.Locator("#cap-note")).ToBeVisibleAsync();
        var stats = await tail.EvaluateAsync<double[]>("() => [window.__frames, (performance.now() - window.__start) / 1000, window.__longTasks.length, window.__longTasks.reduce((a, b) => a + b, 0), Math.max(0, ...window.__longTasks), document.querySelectorAll('#rows .message').length]");
        report.AppendLine(CultureInfo.InvariantCulture, $"live tail at 1,000 messages/s: {stats[0] / stats[1]:F1} frames/s over {stats[1]:F1} s; {stats[2]} long task(s) (>50 ms), {stats[3]:F0} ms in total, longest {stats[4]:F0} ms; {stats[5]} rows in the DOM (cap 5000)");
        report.AppendLine(CultureInfo.InvariantCulture, $"page stats line: {await tail.Locator("#stats").TextContentAsync()}");

        // Where the main thread's time goes: 5 more seconds of the same tail under Chromium's timeline tracing.
        var cdp = await tail.Context.NewCDPSessionAsync(tail);
        var traceEvents = new List<System.Text.Json.JsonElement>();
        var traced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cdp.Event("Tracing.dataCollected").OnEvent += (_, e) =>
        {
            lock (traceEvents)
            {
                traceEvents.AddRange(e!.Value.GetProperty("value").EnumerateArray().Select(v => v.Clone()));
            }
        };
        cdp.Event("Tracing.tracingComplete").OnEvent += (_, _) => traced.TrySetResult();
        await cdp.SendAsync("Tracing.start", new() { ["categories"] = "devtools.timeline,v8", ["transferMode"] = "ReportEvents" });
        await AppendAtRateAsync(host, "rate", sentBefore: sentTotal, seconds: 5);
        await cdp.SendAsync("Tracing.end");
        await traced.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        report.AppendLine("main-thread time by trace event over 5 s (inclusive, nested events overlap): " + MainThreadBreakdown(traceEvents));

        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
        var output = Path.Combine(RepositoryRoot(), "artifacts", "inspector-measurements.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        await File.WriteAllTextAsync(output, report.ToString(), Ct);
    }

    private static async Task AppendAtRateAsync(InspectorHost host, string name, int sentBefore, int seconds)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        var sent = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            var due = (int)(clock.Elapsed.TotalSeconds * 1000) - sent;
            if (due > 0)
            {
                await host.AppendJsonAsync(name, "[" + string.Join(',', Enumerable.Range(sentBefore + sent, due).Select(n => $$"""{"n":{{n}},"kind":"tick"}""")) + "]");
                sent += due;
            }
            await timer.WaitForNextTickAsync(Ct);
        }
    }

    /// <summary>Total milliseconds per event name on the renderer's main thread, largest first.</summary>
    private static string MainThreadBreakdown(List<System.Text.Json.JsonElement> events)
    {
        var main = new HashSet<(int, int)>();
        foreach (var e in events)
        {
            if (e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name"
                && e.GetProperty("args").GetProperty("name").GetString() == "CrRendererMain")
            {
                main.Add((e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32()));
            }
        }
        var totals = new Dictionary<string, double>();
        foreach (var e in events)
        {
            if (e.GetProperty("ph").GetString() == "X" && e.TryGetProperty("dur", out var dur)
                && main.Contains((e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32())))
            {
                var name = e.GetProperty("name").GetString()!;
                totals[name] = totals.GetValueOrDefault(name) + (dur.GetDouble() / 1000);
            }
        }
        return string.Join(", ", totals.OrderByDescending(t => t.Value).Take(14).Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Key} {t.Value:F0} ms")));
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "DurableStreams.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("DurableStreams.sln not found above " + AppContext.BaseDirectory);
    }
}
