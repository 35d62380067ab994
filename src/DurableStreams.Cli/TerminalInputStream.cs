namespace DurableStreams.Cli;

/// <summary>
/// Standard input read from a terminal: a read that is cancelled returns at once (the read of the terminal itself cannot
/// be cancelled and is left pending; the process is about to end), so Ctrl+C does not wait for the next line. Reads also
/// end when <paramref name="stopping"/> (the command's Ctrl+C token) is cancelled: HttpClient reads a request body with
/// no token of its own.
/// </summary>
internal sealed class TerminalInputStream(Stream inner, CancellationToken stopping) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping);
        either.Token.ThrowIfCancellationRequested();
        // The pending read gets its own buffer so an abandoned read never writes into the caller's memory later.
        var own = new byte[buffer.Length];
        var read = await inner.ReadAsync(own, CancellationToken.None).AsTask().WaitAsync(either.Token);
        own.AsSpan(0, read).CopyTo(buffer.Span);
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
