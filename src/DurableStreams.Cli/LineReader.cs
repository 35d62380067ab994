using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace DurableStreams.Cli;

/// <summary>
/// Splits a stream into lines as it arrives, without reading it whole: each line keeps its '\n' (a last line without
/// one is returned as is). Before waiting for more input it yields one empty line as a marker, so a batching caller can
/// send what it has instead of holding lines back from a slow pipe (real lines are never empty).
/// </summary>
internal sealed class LineReader(Stream input)
{
    private readonly PipeReader _reader = PipeReader.Create(input, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));

    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadLinesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var pending = _reader.ReadAsync(cancellationToken);
                if (!pending.IsCompleted)
                {
                    yield return ReadOnlyMemory<byte>.Empty;
                }

                var result = await pending;
                var buffer = result.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    yield return line.ToArray();
                }

                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                    {
                        yield return buffer.ToArray();
                    }

                    _reader.AdvanceTo(buffer.End);
                    yield break;
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await _reader.CompleteAsync();
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        if (buffer.PositionOf((byte)'\n') is not { } newline)
        {
            line = default;
            return false;
        }

        var end = buffer.GetPosition(1, newline);
        line = buffer.Slice(0, end);
        buffer = buffer.Slice(end);
        return true;
    }
}
