using System.Net;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>A body of unknown length, so HttpClient sends it with Transfer-Encoding: chunked.</summary>
public sealed class ChunkedContent : HttpContent
{
    private readonly byte[] _data;
    private readonly int _pieceSize;

    public ChunkedContent(byte[] data, string contentType, int pieceSize = 256)
    {
        _data = data;
        _pieceSize = pieceSize;
        Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        for (var at = 0; at < _data.Length; at += _pieceSize)
        {
            await stream.WriteAsync(_data.AsMemory(at, Math.Min(_pieceSize, _data.Length - at)));
            await stream.FlushAsync();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
