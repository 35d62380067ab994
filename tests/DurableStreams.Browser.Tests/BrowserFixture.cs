using Microsoft.Playwright;
using Xunit;

namespace DurableStreams.Browser.Tests;

/// <summary>
/// One headless Chromium for a test class: Debian's <c>/usr/lib/chromium/chromium</c> (Playwright's own browser download
/// does not work offline). Without it the tests skip with a message, except under <c>CI=true</c>, where they fail.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>The real binary of Debian's <c>chromium</c> package (<c>/usr/bin/chromium</c> is a shell wrapper).</summary>
    public const string ChromiumPath = "/usr/lib/chromium/chromium";

    private IPlaywright? _playwright;

    public IBrowser? Browser { get; private set; }

    public string? MissingReason { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var path = Environment.GetEnvironmentVariable("DS_CHROMIUM") ?? ChromiumPath;
        if (!File.Exists(path))
        {
            MissingReason = $"Chromium is not installed at {path} (apt-get install -y chromium); the browser tests are skipped.";
            return;
        }
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = path, Headless = true });
    }

    /// <summary>The browser, or a skip (a failure under CI) when there is none.</summary>
    public IBrowser Require()
    {
        if (Browser is not null)
        {
            return Browser;
        }
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail("CI=true but " + MissingReason);
        }
        Assert.Skip(MissingReason!);
        throw new InvalidOperationException("unreachable");
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
    }
}
