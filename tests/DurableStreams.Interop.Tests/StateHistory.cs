using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace DurableStreams.Interop.Tests;

/// <summary>
/// A seeded, randomized State-Protocol history (STATE-PROTOCOL.md) and the state it leaves: changes over a fixed set of
/// (type, key)s — inserts of absent keys, updates and upserts of live ones, deletes — with <c>reset</c> control messages
/// and messages that are not State-Protocol at all mixed in. The model is the test's own materialisation: what a
/// correct reader must end up with, compacted or not.
/// </summary>
internal sealed class StateHistory(int seed, int keys)
{
    private static readonly string[] Types = ["user", "task", "note"];

    private readonly Random _random = new(seed);
    private readonly SortedDictionary<(string Type, string Key), string> _state = new(Comparer<(string, string)>.Create(
        static (a, b) => string.CompareOrdinal(a.Item1, b.Item1) is var byType and not 0 ? byType : string.CompareOrdinal(a.Item2, b.Item2)));
    private long _counter;

    /// <summary>Change messages generated so far.</summary>
    public long Changes { get; private set; }

    /// <summary>Deletes among them.</summary>
    public long Deletes { get; private set; }

    /// <summary>Reset control messages generated so far.</summary>
    public int Resets { get; private set; }

    /// <summary>Messages that are not State-Protocol messages generated so far.</summary>
    public int Others { get; private set; }

    /// <summary>Live (type, key)s in the model.</summary>
    public int LiveKeys => _state.Count;

    /// <summary>
    /// The next <paramref name="count"/> messages as JSON texts: changes, and with the given chances a reset or a
    /// message outside the protocol (neither counts towards <paramref name="count"/> changes).
    /// </summary>
    public List<string> Next(int count, double resetChance = 0, double otherChance = 0)
    {
        var messages = new List<string>(count + 4);
        for (var i = 0; i < count; i++)
        {
            if (_random.NextDouble() < resetChance)
            {
                messages.Add("""{"headers":{"control":"reset"}}""");
                _state.Clear();
                Resets++;
            }
            if (_random.NextDouble() < otherChance)
            {
                messages.Add(string.Create(CultureInfo.InvariantCulture, $$"""{"audit":"not a state message","n":{{_counter++}}}"""));
                Others++;
            }
            messages.Add(Change());
        }
        return messages;
    }

    private string Change()
    {
        var type = Types[_random.Next(Types.Length)];
        var key = "k" + _random.Next(keys).ToString(CultureInfo.InvariantCulture);
        var live = _state.ContainsKey((type, key));
        var roll = _random.NextDouble();
        Changes++;
        if (live && roll < 0.25)
        {
            _state.Remove((type, key));
            Deletes++;
            return $$$"""{"type":"{{{type}}}","key":"{{{key}}}","old_value":null,"headers":{"operation":"delete"}}""";
        }
        var operation = !live ? (roll < 0.8 ? "insert" : "upsert") : roll < 0.85 ? "update" : "upsert";
        var n = _counter++;
        var value = string.Create(CultureInfo.InvariantCulture, $$"""{"n":{{n}},"name":"{{type}} {{key}} v{{n}}","done":{{(n % 2 == 0 ? "true" : "false")}},"tags":["t{{n % 7}}","t{{n % 11}}"]}""");
        _state[(type, key)] = value;
        return $$$"""{"type":"{{{type}}}","key":"{{{key}}}","value":{{{value}}},"headers":{"operation":"{{{operation}}}","txid":"tx{{{n / 10}}}"}}""";
    }

    /// <summary>
    /// The hash <c>state-materialize.mjs</c> prints for the model: SHA-256 of <c>JSON.stringify</c> of
    /// <c>[type, key, value]</c> sorted by type then key (values are generated in the compact form JSON.stringify writes).
    /// </summary>
    public string StateSha256()
    {
        var text = new StringBuilder("[");
        foreach (var ((type, key), value) in _state)
        {
            if (text.Length > 1)
            {
                text.Append(',');
            }
            text.Append(CultureInfo.InvariantCulture, $"[\"{type}\",\"{key}\",{value}]");
        }
        text.Append(']');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>A JSON array body of <paramref name="messages"/>.</summary>
    public static byte[] Body(IEnumerable<string> messages) => Encoding.UTF8.GetBytes("[" + string.Join(',', messages) + "]");
}
