using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class StreamGlobTests
{
    [Theory]
    [InlineData("events/*", "events/a", true)]
    [InlineData("events/*", "events/a/b", false)]
    [InlineData("events/*", "events", false)]
    [InlineData("events/*", "other/a", false)]
    [InlineData("events/**", "events", true)]
    [InlineData("events/**", "events/a", true)]
    [InlineData("events/**", "events/a/b/c", true)]
    [InlineData("**/done", "done", true)]
    [InlineData("**/done", "a/b/done", true)]
    [InlineData("**/done", "a/b/done/x", false)]
    [InlineData("a/**/z", "a/z", true)]
    [InlineData("a/**/z", "a/b/c/z", true)]
    [InlineData("a/**/z", "a/b/c/y", false)]
    [InlineData("*/x", "a/x", true)]
    [InlineData("*/x", "x", false)]
    [InlineData("events/user-*", "events/user-42", true)]
    [InlineData("events/user-*", "events/admin-42", false)]
    [InlineData("events/*-log", "events/app-log", true)]
    [InlineData("events/a", "events/a", true)]
    [InlineData("events/a", "events/ab", false)]
    [InlineData("**", "anything/at/all", true)]
    public void Star_matches_one_segment_and_double_star_zero_or_more(string pattern, string path, bool expected)
    {
        Assert.Equal(expected, StreamGlob.IsMatch(pattern, path));
    }
}
