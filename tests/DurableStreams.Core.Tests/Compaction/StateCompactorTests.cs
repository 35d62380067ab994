using System.Text;
using DurableStreams.Core.Compaction;
using Xunit;

namespace DurableStreams.Core.Tests.Compaction;

/// <summary>How <see cref="StateCompactor"/> splits a read into stored messages.</summary>
public sealed class StateCompactorTests
{
    [Theory]
    [InlineData("\"a,b\"")]
    [InlineData("\"[{,}]\"")]
    [InlineData("\"\\\",\\\\\"")]
    [InlineData("{\"k\":\"v,]}\",\"n\":[1,[2,{\"x\":\"}\"}]]}")]
    [InlineData("[1,2,[3,\",\"]]")]
    [InlineData("12345")]
    [InlineData("-1.5e3")]
    [InlineData("true")]
    [InlineData("null")]
    [InlineData("{}")]
    public void StoredMessageLength_is_the_first_value_and_its_comma_whatever_the_value_holds(string value)
    {
        var stored = Encoding.UTF8.GetBytes(value + "," + "{\"next\":\",\"},");

        Assert.Equal(Encoding.UTF8.GetByteCount(value) + 1, StateCompactor.StoredMessageLength(stored));
    }

    [Theory]
    [InlineData("{\"a\":1")]
    [InlineData("\"abc")]
    [InlineData("{\"a\":1}")]
    [InlineData("")]
    public void StoredMessageLength_refuses_a_message_cut_short(string chunk) =>
        Assert.Throws<InvalidOperationException>(() => StateCompactor.StoredMessageLength(Encoding.UTF8.GetBytes(chunk)));
}
