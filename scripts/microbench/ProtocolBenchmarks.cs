using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using DurableStreams.Protocol;

namespace DurableStreams.MicroBench;

/// <summary>The offset codec: every append response formats one, every read parses one.</summary>
[MemoryDiagnoser]
public class OffsetBenchmarks
{
    private readonly StreamOffset _offset = new(123_456_789);
    private readonly char[] _buffer = new char[StreamOffset.FormattedLength];
    private string _text = string.Empty;

    [GlobalSetup]
    public void Setup() => _text = _offset.ToString();

    [Benchmark]
    public int Format()
    {
        _offset.TryFormat(_buffer, out var written);
        return written;
    }

    [Benchmark]
    public long Parse() => StreamOffset.TryParse(_text, out var parsed) ? parsed.Position : -1;
}

/// <summary>JSON mode: splitting and validating a POSTed array, and writing stored messages back as one array.</summary>
[MemoryDiagnoser]
public class JsonFramingBenchmarks
{
    private ReadOnlyMemory<byte> _tenMessages;
    private List<ReadOnlyMemory<byte>> _stored = [];
    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);

    [GlobalSetup]
    public void Setup()
    {
        var messages = Enumerable.Range(0, 10).Select(i => $$"""{"w":1,"s":{{i}},"p":"{{new string('x', 70)}}"}""");
        _tenMessages = Encoding.UTF8.GetBytes("[" + string.Join(",", messages) + "]");
        if (JsonFraming.TrySplit(_tenMessages, JsonFraming.DefaultMaxDepth, out var split) != JsonFramingError.None)
        {
            throw new InvalidOperationException("the sample body does not frame");
        }
        // Stored form: each message followed by a comma, as the stores keep them; 100 of them (~10 KB).
        _stored = [.. Enumerable.Range(0, 10).SelectMany(_ => split).Select(m => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(m.Span) + ","))];
    }

    [Benchmark]
    public int SplitTenMessages() => JsonFraming.TrySplit(_tenMessages, JsonFraming.DefaultMaxDepth, out var messages) == JsonFramingError.None ? messages.Count : -1;

    [Benchmark]
    public int WriteHundredAsArray()
    {
        _output.ResetWrittenCount();
        JsonFraming.WriteArray(_stored, _output);
        return _output.WrittenCount;
    }
}

/// <summary>SSE framing of one 64 KiB read: text, JSON and base64 (binary streams).</summary>
[MemoryDiagnoser]
public class SseFramingBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(256 * 1024);
    private List<ReadOnlyMemory<byte>> _text = [];
    private List<ReadOnlyMemory<byte>> _json = [];

    [GlobalSetup]
    public void Setup()
    {
        var line = Encoding.UTF8.GetBytes(new string('t', 99) + "\n");
        _text = [.. Enumerable.Range(0, 655).Select(_ => (ReadOnlyMemory<byte>)line)];
        var message = Encoding.UTF8.GetBytes($$"""{"s":1,"p":"{{new string('x', 90)}}"},""");
        _json = [.. Enumerable.Range(0, 655).Select(_ => (ReadOnlyMemory<byte>)message)];
    }

    [Benchmark]
    public int Text()
    {
        _output.ResetWrittenCount();
        SseFrameWriter.WriteTextData(_text, _output);
        return _output.WrittenCount;
    }

    [Benchmark]
    public int Json()
    {
        _output.ResetWrittenCount();
        SseFrameWriter.WriteJsonData(_json, _output);
        return _output.WrittenCount;
    }

    [Benchmark]
    public int Base64()
    {
        _output.ResetWrittenCount();
        SseFrameWriter.WriteBase64Data(_text, _output);
        return _output.WrittenCount;
    }
}
