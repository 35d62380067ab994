using System.Buffers.Text;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace DurableStreams.Bench;

/// <summary>
/// One raw reader's HTTP/1.1 connection for reads of one stream (scenario 16): GET {path}?offset=..[&amp;live=..]
/// over a plain loopback socket, the response head parsed from bytes, the body decoded from Content-Length, chunked or
/// close-delimited framing. Receive, body and request buffers are reused, and the per-delivery async methods use the
/// pooling builder (their state machines would otherwise be allocated on every wait for the socket), so a delivery
/// costs the client little CPU and about a hundred bytes of garbage. Anything unexpected throws
/// <see cref="BenchFailureException"/>.
/// </summary>
internal sealed class RawReadConnection : IDisposable
{
    private const int BufferSize = 16 * 1024;
    private const int MaxBody = 64 * 1024 * 1024;

    private readonly IPEndPoint _endPoint;
    private readonly EpollReceiver? _receiver;
    private readonly byte[] _requestStart;
    private readonly byte[] _liveRequestEnd;
    private readonly byte[] _catchUpRequestEnd;
    private readonly byte[] _buffer = new byte[BufferSize];
    private byte[] _request = new byte[512];
    private byte[] _body = new byte[BufferSize];
    private byte[] _offset = new byte[64];
    private int _offsetLength;
    private byte[] _nextOffset = new byte[64];
    private int _nextOffsetLength;
    private Socket? _socket;
    private bool _reused;
    private int _start;
    private int _end;
    private Framing _framing;
    private long _remaining;
    private bool _inChunk;
    private bool _closeAfterBody;

    // receiver: receive through this one-thread epoll loop (scenario 17) instead of the socket's own async receive.
    public RawReadConnection(Uri stream, string live, string offset, EpollReceiver? receiver = null)
    {
        _receiver = receiver;
        if (stream.Host != "127.0.0.1")
        {
            throw new InvalidOperationException($"raw socket readers connect to 127.0.0.1 only, not {stream.Host}");
        }

        _endPoint = new IPEndPoint(IPAddress.Loopback, stream.Port);
        _requestStart = Encoding.ASCII.GetBytes($"GET {stream.AbsolutePath}?offset=");
        var requestEnd = string.Create(CultureInfo.InvariantCulture, $" HTTP/1.1\r\nHost: 127.0.0.1:{stream.Port}\r\n\r\n");
        _liveRequestEnd = Encoding.ASCII.GetBytes($"&live={live}{requestEnd}");
        _catchUpRequestEnd = Encoding.ASCII.GetBytes(requestEnd);
        SetOffset(Encoding.UTF8.GetBytes(offset));
    }

    private enum Framing
    {
        None,
        Length,
        Chunked,
        UntilClose,
    }

    /// <summary>
    /// With the epoll receiver: the CLOCK_REALTIME nanoseconds at which the bytes of the last receive reached the
    /// socket (<see cref="EpollReceiver.LastArrivalNs"/>); otherwise 0.
    /// </summary>
    public long LastArrivalNs { get; private set; }

    /// <summary>Sends the GET (live, or a plain catch-up read) at the current offset and reads the response head; returns the status code.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> GetAsync(bool live, CancellationToken cancellationToken)
    {
        if (_framing != Framing.None)
        {
            throw new InvalidOperationException("the previous response's body was not read to its end");
        }

        var request = FormatRequest(live ? _liveRequestEnd : _catchUpRequestEnd);
        for (var attempt = 0; ; attempt++)
        {
            if (_socket is null)
            {
                await ConnectAsync(cancellationToken);
            }

            await SendAsync(request, cancellationToken);
            if (_start < _end || await FillAsync(cancellationToken))
            {
                break;
            }

            // A server may close an idle keep-alive connection just as the next request goes out. Like HttpClient,
            // retry a GET once on a fresh connection then, but never on a fresh connection that closed unanswered.
            var reused = _reused;
            Close();
            if (!reused || attempt > 0)
            {
                throw new BenchFailureException("the server closed the connection without answering a GET");
            }
        }

        var statusLine = await ReadLineAsync("the status line", cancellationToken);
        var status = ParseStatus(_buffer.AsSpan(statusLine.Start, statusLine.Length));
        long contentLength = -1;
        var chunked = false;
        _closeAfterBody = false;
        _nextOffsetLength = 0;
        while (true)
        {
            var line = await ReadLineAsync("the response headers", cancellationToken);
            if (line.Length == 0)
            {
                break;
            }

            ParseHeader(_buffer.AsSpan(line.Start, line.Length), ref contentLength, ref chunked);
        }

        if (status is 204 or 304)
        {
            _framing = Framing.None;
        }
        else if (chunked)
        {
            if (contentLength >= 0)
            {
                throw new BenchFailureException($"a {status} response had both Content-Length and Transfer-Encoding: chunked");
            }

            (_framing, _inChunk, _remaining) = (Framing.Chunked, false, 0);
        }
        else if (contentLength >= 0)
        {
            (_framing, _remaining) = (contentLength > 0 ? Framing.Length : Framing.None, contentLength);
        }
        else
        {
            (_framing, _closeAfterBody) = (Framing.UntilClose, true);
        }

        if (_framing == Framing.None)
        {
            EndResponse();
        }

        return status;
    }

    /// <summary>Makes the last response's Stream-Next-Offset the offset of the next GET.</summary>
    public void UseNextOffset(string what, int status)
    {
        if (_nextOffsetLength == 0)
        {
            throw new BenchFailureException($"{what} answered {status} without Stream-Next-Offset");
        }

        SetOffset(_nextOffset.AsSpan(0, _nextOffsetLength));
    }

    /// <summary>The whole body of the current response, in a buffer reused by the next call.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ReadBodyAsync(CancellationToken cancellationToken)
    {
        var length = 0;
        while (true)
        {
            var piece = await ReadBodyPieceAsync(cancellationToken);
            if (piece.IsEmpty)
            {
                return _body.AsMemory(0, length);
            }

            _body = Grow(_body, length, length + piece.Length, "a response body");
            piece.Span.CopyTo(_body.AsSpan(length));
            length += piece.Length;
        }
    }

    /// <summary>The next decoded piece of the current response's body, valid until the next call; empty at its end.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ReadBodyPieceAsync(CancellationToken cancellationToken)
    {
        switch (_framing)
        {
            case Framing.Length when _remaining > 0:
                return await TakeAsync(cancellationToken);
            case Framing.UntilClose:
                if (_start == _end && !await FillAsync(cancellationToken))
                {
                    EndResponse();
                    return default;
                }

                _remaining = _end - _start;
                return await TakeAsync(cancellationToken);
            case Framing.Chunked:
                if (_remaining == 0 && !await StartChunkAsync(cancellationToken))
                {
                    EndResponse();
                    return default;
                }

                return await TakeAsync(cancellationToken);
            default:
                if (_framing != Framing.None)
                {
                    EndResponse();
                }

                return default;
        }
    }

    public void Dispose() => Close();

    // Reads past the previous chunk's CRLF to the next chunk's size line; false at the last (zero) chunk, whose
    // trailer section is read too.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> StartChunkAsync(CancellationToken cancellationToken)
    {
        if (_inChunk && (await ReadLineAsync("a chunk's end", cancellationToken)).Length != 0)
        {
            throw new BenchFailureException("a chunk was longer than its size line said");
        }

        var line = await ReadLineAsync("a chunk size", cancellationToken);
        var text = _buffer.AsSpan(line.Start, line.Length);
        if (!Utf8Parser.TryParse(text, out long size, out var consumed, 'X') || consumed == 0
            || (consumed < text.Length && text[consumed] is not ((byte)';' or (byte)' ' or (byte)'\t')))
        {
            throw new BenchFailureException($"invalid chunk size line '{Printable(text)}'");
        }

        if (size > 0)
        {
            (_remaining, _inChunk) = (size, true);
            return true;
        }

        while ((await ReadLineAsync("the chunked trailer", cancellationToken)).Length != 0)
        {
        }

        return false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadOnlyMemory<byte>> TakeAsync(CancellationToken cancellationToken)
    {
        if (_start == _end && !await FillAsync(cancellationToken))
        {
            throw new BenchFailureException("the connection closed in the middle of a response body");
        }

        var length = (int)Math.Min(_remaining, _end - _start);
        var piece = _buffer.AsMemory(_start, length);
        _start += length;
        _remaining -= length;
        return piece;
    }

    /// <summary>The next line (CRLF or LF stripped) as a position in the receive buffer, valid until the next fill.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(int Start, int Length)> ReadLineAsync(string what, CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var start = _start;
                _start += newline + 1;
                return (start, newline > 0 && _buffer[start + newline - 1] == '\r' ? newline - 1 : newline);
            }

            if (!await FillAsync(cancellationToken))
            {
                throw new BenchFailureException($"the connection closed in the middle of {what}");
            }
        }
    }

    /// <summary>Receives more bytes after the unread ones; false when the server closed the connection.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            (_start, _end) = (0, 0);
        }
        else if (_end == _buffer.Length)
        {
            if (_start == 0)
            {
                throw new BenchFailureException($"a response line is longer than {BufferSize} bytes");
            }

            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            (_start, _end) = (0, _end - _start);
        }

        var received = _receiver is null
            ? await _socket!.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken)
            : await _receiver.ReceiveAsync(_socket!, _buffer.AsMemory(_end));
        LastArrivalNs = _receiver?.LastArrivalNs(_socket!) ?? 0;
        _end += received;
        return received > 0;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        while (!request.IsEmpty)
        {
            // With the epoll receiver, send synchronously: an async socket operation would register the socket with
            // .NET's own epoll, whose thread then hands every readiness event to the thread pool for nothing.
            request = request[(_receiver is null ? await _socket!.SendAsync(request, SocketFlags.None, cancellationToken) : _socket!.Send(request.Span))..];
        }
    }

    private async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (_receiver is null)
            {
                await socket.ConnectAsync(_endPoint, cancellationToken);
            }
            else
            {
                socket.Connect(_endPoint); // synchronously, for the reason given in SendAsync
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        (_socket, _reused, _start, _end) = (socket, false, 0, 0);
    }

    private void EndResponse()
    {
        _framing = Framing.None;
        if (_closeAfterBody)
        {
            Close();
        }
        else
        {
            _reused = true;
        }
    }

    private void Close()
    {
        if (_socket is not null)
        {
            _receiver?.Forget(_socket);
        }

        _socket?.Dispose();
        _socket = null;
    }

    private static int ParseStatus(ReadOnlySpan<byte> text)
    {
        if (text.Length < 12 || !text.StartsWith("HTTP/1.1 "u8) || (text.Length > 12 && text[12] != ' ')
            || !Utf8Parser.TryParse(text.Slice(9, 3), out int status, out var consumed) || consumed != 3)
        {
            throw new BenchFailureException($"unexpected status line '{Printable(text)}'");
        }

        return status;
    }

    private void ParseHeader(ReadOnlySpan<byte> line, ref long contentLength, ref bool chunked)
    {
        var colon = line.IndexOf((byte)':');
        if (colon <= 0)
        {
            throw new BenchFailureException($"malformed response header '{Printable(line)}'");
        }

        var name = line[..colon];
        var value = line[(colon + 1)..].Trim(" \t"u8);
        if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
        {
            if (!Utf8Parser.TryParse(value, out long length, out var consumed) || consumed != value.Length || length < 0
                || (contentLength >= 0 && length != contentLength))
            {
                throw new BenchFailureException($"invalid Content-Length '{Printable(value)}'");
            }

            contentLength = length;
        }
        else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
        {
            if (!Ascii.EqualsIgnoreCase(value, "chunked"u8))
            {
                throw new BenchFailureException($"unexpected Transfer-Encoding '{Printable(value)}'");
            }

            chunked = true;
        }
        else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
        {
            _closeAfterBody |= Ascii.EqualsIgnoreCase(value, "close"u8);
        }
        else if (Ascii.EqualsIgnoreCase(name, "Stream-Next-Offset"u8))
        {
            _nextOffset = Grow(_nextOffset, 0, value.Length, "Stream-Next-Offset");
            value.CopyTo(_nextOffset);
            _nextOffsetLength = value.Length;
        }
    }

    private void SetOffset(ReadOnlySpan<byte> offset)
    {
        _offset = Grow(_offset, 0, offset.Length, "an offset");
        offset.CopyTo(_offset);
        _offsetLength = offset.Length;
    }

    // The offset escaped as Uri.EscapeDataString does: every byte but RFC 3986's unreserved characters as %XX.
    private ReadOnlyMemory<byte> FormatRequest(byte[] requestEnd)
    {
        _request = Grow(_request, 0, _requestStart.Length + (3 * _offsetLength) + requestEnd.Length, "a request");
        _requestStart.CopyTo(_request, 0);
        var length = _requestStart.Length;
        foreach (var b in _offset.AsSpan(0, _offsetLength))
        {
            if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'.' or (byte)'_' or (byte)'~')
            {
                _request[length++] = b;
            }
            else
            {
                _request[length++] = (byte)'%';
                _request[length++] = (byte)"0123456789ABCDEF"[b >> 4];
                _request[length++] = (byte)"0123456789ABCDEF"[b & 15];
            }
        }

        requestEnd.CopyTo(_request, length);
        return _request.AsMemory(0, length + requestEnd.Length);
    }

    /// <summary>A buffer of at least <paramref name="needed"/> bytes keeping the first <paramref name="used"/>.</summary>
    public static byte[] Grow(byte[] buffer, int used, int needed, string what)
    {
        if (needed <= buffer.Length)
        {
            return buffer;
        }

        if (needed > MaxBody)
        {
            throw new BenchFailureException($"{what} is larger than {MaxBody} bytes");
        }

        var grown = new byte[Math.Min(MaxBody, Math.Max(needed, buffer.Length * 2))];
        buffer.AsSpan(0, used).CopyTo(grown);
        return grown;
    }

    public static string Printable(ReadOnlySpan<byte> text) =>
        Encoding.ASCII.GetString(text.Length <= 200 ? text : text[..200]);
}

/// <summary>
/// Splits a server-sent-events body, fed in arbitrary pieces, into events (blank-line terminated, LF or CRLF lines):
/// the <c>event:</c> field names the kind, <c>data:</c> lines are joined with LF, one space after the colon is
/// dropped, comments and other fields are ignored. Only the protocol's data and control events are accepted.
/// </summary>
internal sealed class SseEventReader
{
    private byte[] _line = new byte[1024];
    private int _lineLength;
    private byte[] _data = new byte[4096];
    private int _dataLength;
    private int _eventLength;
    private bool _hasData;
    private string? _eventType;

    public enum Kind
    {
        None,
        Control,
        Data,
    }

    /// <summary>The data of the event <see cref="Read"/> last completed, valid until the next call.</summary>
    public ReadOnlyMemory<byte> Data => _data.AsMemory(0, _eventLength);

    /// <summary>
    /// Consumes <paramref name="input"/> up to the blank line that ends the next event and returns the bytes consumed;
    /// <paramref name="completed"/> is that event's kind, or None when the input ran out first.
    /// </summary>
    public int Read(ReadOnlySpan<byte> input, out Kind completed)
    {
        var consumed = 0;
        while (consumed < input.Length)
        {
            var rest = input[consumed..];
            var newline = rest.IndexOf((byte)'\n');
            if (newline < 0)
            {
                Append(ref _line, ref _lineLength, rest, "an SSE line");
                consumed = input.Length;
                break;
            }

            consumed += newline + 1;
            ReadOnlySpan<byte> line;
            if (_lineLength == 0)
            {
                line = rest[..newline];
            }
            else
            {
                Append(ref _line, ref _lineLength, rest[..newline], "an SSE line");
                line = _line.AsSpan(0, _lineLength);
                _lineLength = 0;
            }

            if (line.EndsWith("\r"u8))
            {
                line = line[..^1];
            }

            completed = Line(line);
            if (completed != Kind.None)
            {
                return consumed;
            }
        }

        completed = Kind.None;
        return consumed;
    }

    private Kind Line(ReadOnlySpan<byte> line)
    {
        if (line.IsEmpty)
        {
            return Dispatch();
        }

        if (line[0] == ':')
        {
            return Kind.None;
        }

        var colon = line.IndexOf((byte)':');
        var field = colon < 0 ? line : line[..colon];
        var value = colon < 0 ? default : line[(colon + 1)..];
        if (value.StartsWith(" "u8))
        {
            value = value[1..];
        }

        if (field.SequenceEqual("event"u8))
        {
            _eventType = value.SequenceEqual("data"u8) ? "data" : value.SequenceEqual("control"u8) ? "control" : Encoding.UTF8.GetString(value);
        }
        else if (field.SequenceEqual("data"u8))
        {
            if (_hasData)
            {
                Append(ref _data, ref _dataLength, "\n"u8, "SSE data");
            }

            Append(ref _data, ref _dataLength, value, "SSE data");
            _hasData = true;
        }

        return Kind.None;
    }

    private Kind Dispatch()
    {
        var (type, hasData) = (_eventType, _hasData);
        (_eventLength, _dataLength, _hasData, _eventType) = (_dataLength, 0, false, null);
        return type switch
        {
            null when !hasData => Kind.None, // a stray blank line is no event
            "control" => Kind.Control,
            "data" when hasData => Kind.Data,
            "data" => throw new BenchFailureException("an SSE data event had no data line"),
            _ => throw new BenchFailureException($"unexpected SSE event '{type ?? "message"}'"),
        };
    }

    private static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> bytes, string what)
    {
        buffer = RawReadConnection.Grow(buffer, length, length + bytes.Length, what);
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
    }
}
