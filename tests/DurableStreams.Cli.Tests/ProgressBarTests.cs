using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>The progress bar's on/off decision, threshold, throttling and text; no terminal involved.</summary>
public sealed class ProgressBarTests : IDisposable
{
    private const long MiB = 1024 * 1024;

    private readonly FakeTimeProvider _time = new();
    private readonly StringWriter _error = new();

    public void Dispose() => _error.Dispose();

    [Fact]
    public void A_disabled_bar_writes_nothing()
    {
        var bar = new ProgressBar(_error, enabled: false, _time, "Uploading", 10 * MiB);

        bar.Report(5 * MiB);
        bar.Complete();

        Assert.Equal("", _error.ToString());
    }

    [Fact]
    public void Nothing_is_drawn_up_to_one_mebibyte()
    {
        var bar = new ProgressBar(_error, enabled: true, _time, "Reading", null);

        bar.Report(MiB);
        bar.Complete();

        Assert.Equal("", _error.ToString());
    }

    [Fact]
    public void Redraws_are_throttled_to_one_per_interval_and_complete_erases_the_line()
    {
        var bar = new ProgressBar(_error, enabled: true, _time, "Uploading", 4 * MiB);

        bar.Report(2 * MiB); // drawn: first time past the threshold
        bar.Report(3 * MiB); // too soon
        _time.Advance(ProgressBar.Interval);
        bar.Report(4 * MiB); // drawn
        bar.Complete();

        var first = ProgressBar.Render("Uploading", 2 * MiB, 4 * MiB);
        var second = ProgressBar.Render("Uploading", 4 * MiB, 4 * MiB);
        Assert.Equal("\r" + first + "\r" + second.PadRight(first.Length) + "\r" + new string(' ', second.Length) + "\r", _error.ToString());
    }

    [Theory]
    [InlineData(3 * MiB / 2, 4 * MiB, "Uploading [###########-------------------]  37% 1.5 MiB / 4.0 MiB")]
    [InlineData(4 * MiB, 4 * MiB, "Uploading [##############################] 100% 4.0 MiB / 4.0 MiB")]
    [InlineData(5 * MiB / 2, null, "Uploading 2.5 MiB")]
    public void Render_shows_a_bar_and_percentage_when_the_total_is_known(long done, long? total, string expected) =>
        Assert.Equal(expected, ProgressBar.Render("Uploading", done, total));

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(1536, "1.5 KiB")]
    [InlineData(3L * 1024 * 1024 * 1024, "3.0 GiB")]
    public void Sizes_use_binary_units(long bytes, string expected) => Assert.Equal(expected, ProgressBar.Size(bytes));
}
