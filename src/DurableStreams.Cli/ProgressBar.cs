using System.Globalization;

namespace DurableStreams.Cli;

/// <summary>
/// A one-line progress bar on standard error for uploads and catch-up reads. It draws only when enabled (standard error
/// is a terminal), only once more than <see cref="Threshold"/> bytes have moved, and at most once per
/// <see cref="Interval"/>; <see cref="Complete"/> erases it. Disabled, it writes nothing.
/// </summary>
internal sealed class ProgressBar
{
    /// <summary>Transfers up to this size finish too fast to need a bar: 1 MiB.</summary>
    public const long Threshold = 1024 * 1024;

    /// <summary>Redraws at most this often.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private const int BarWidth = 30;

    private readonly TextWriter _error;
    private readonly TimeProvider _time;
    private readonly string _label;
    private long? _lastDrawnAt;
    private int _lastWidth;

    public ProgressBar(TextWriter error, bool enabled, TimeProvider time, string label, long? total)
    {
        _error = error;
        Enabled = enabled;
        _time = time;
        _label = label;
        Total = total is > 0 ? total : null;
    }

    public bool Enabled { get; }

    /// <summary>The expected number of bytes, when known; the bar then shows a percentage.</summary>
    public long? Total { get; set; }

    /// <summary>Reports the bytes moved so far; redraws when due.</summary>
    public void Report(long done)
    {
        if (!Enabled || done <= Threshold)
        {
            return;
        }

        var now = _time.GetTimestamp();
        if (_lastDrawnAt is { } last && _time.GetElapsedTime(last, now) < Interval)
        {
            return;
        }

        _lastDrawnAt = now;
        var line = Render(_label, done, Total);
        // '\r' returns to the line start; pad over a longer previous line.
        _error.Write("\r" + line.PadRight(_lastWidth));
        _error.Flush();
        _lastWidth = line.Length;
    }

    /// <summary>Erases the bar if one was drawn.</summary>
    public void Complete()
    {
        if (_lastDrawnAt is null)
        {
            return;
        }

        _error.Write("\r" + new string(' ', _lastWidth) + "\r");
        _error.Flush();
        _lastDrawnAt = null;
        _lastWidth = 0;
    }

    /// <summary>The bar's text: <c>Uploading [#######-----]  42% 12.6 MiB / 30.0 MiB</c>, or without a total <c>Reading 12.6 MiB</c>.</summary>
    public static string Render(string label, long done, long? total)
    {
        if (total is not { } all)
        {
            return $"{label} {Size(done)}";
        }

        var fraction = Math.Clamp((double)done / all, 0, 1);
        var filled = (int)(fraction * BarWidth);
        var percent = ((int)(fraction * 100)).ToString(CultureInfo.InvariantCulture).PadLeft(3);
        return $"{label} [{new string('#', filled)}{new string('-', BarWidth - filled)}] {percent}% {Size(done)} / {Size(all)}";
    }

    /// <summary>Bytes in binary units with one decimal: <c>512 B</c>, <c>1.5 KiB</c>, <c>12.6 MiB</c>, <c>2.0 GiB</c>.</summary>
    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        if (bytes < 1024)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{bytes} B");
        }

        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }
}

/// <summary>A read-only stream that reports how many bytes have been read through it to a <see cref="ProgressBar"/>.</summary>
internal sealed class ProgressStream(Stream inner, ProgressBar progress) : Stream
{
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int Count(int read)
    {
        _read += read;
        progress.Report(_read);
        return read;
    }
}
