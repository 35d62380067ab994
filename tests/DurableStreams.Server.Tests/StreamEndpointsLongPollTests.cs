using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// Long-poll against a fake clock: the test learns from <see cref="Testing.ObservedStore"/> that the request is parked, then
/// appends, closes, deletes or advances the clock, and awaits the response. No sleeps.
/// </summary>
public sealed class StreamEndpointsLongPollTests
{
    private const int Timeout = 20_000;
    private static readonly TimeSpan LongPollTimeout = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_at_the_tail_waits_for_an_append_and_answers_200_with_the_data_and_a_cursor()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "old", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        Assert.False(poll.IsCompleted);
        await server.AppendAsync(name, "text/plain", "new", Ct);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("new", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(Http.Offset(6), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.Matches("^[0-9]+$", Http.Header(response, "Stream-Cursor"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
        Http.SecurityHeaders(response);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_at_the_tail_answers_204_once_the_clock_passes_the_timeout()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        Assert.False(poll.IsCompleted);
        server.FakeTime.Advance(LongPollTimeout);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(tail, Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.Matches("^[0-9]+$", Http.Header(response, "Stream-Cursor"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
        Assert.Equal("no-store", Http.Header(response, "Cache-Control"));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_is_still_waiting_just_before_the_timeout()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        server.FakeTime.Advance(LongPollTimeout - TimeSpan.FromMilliseconds(1));
        await server.AppendAsync(name, "text/plain", "d", Ct);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("d", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_close_while_waiting_answers_204_with_Stream_Closed_and_no_cursor()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        Assert.False(poll.IsCompleted);
        await server.CloseAsync(name, Ct);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("true", Http.Header(response, "Stream-Closed"));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.Equal(tail, Http.Header(response, "Stream-Next-Offset"));
        Assert.Null(Http.Header(response, "Stream-Cursor"));
    }

    [Fact(Timeout = Timeout)]
    public async Task An_append_and_close_while_waiting_answers_200_with_the_data_and_Stream_Closed()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        using (var close = await server.PostAsync(name, "text/plain", "end", Ct, ("Stream-Closed", "true")))
        {
            Assert.Equal(HttpStatusCode.NoContent, close.StatusCode);
        }
        using var response = await poll;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("end", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("true", Http.Header(response, "Stream-Closed"));
        Assert.Equal(Http.Offset(6), Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_delete_while_waiting_answers_404_instead_of_waiting_for_the_timeout()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        using (var delete = await server.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        using var response = await poll;

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_behind_the_tail_answers_at_once_without_waiting()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);

        using var response = await server.GetAsync($"{name}?offset={Http.Offset(1)}&live=long-poll", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("bc", await response.Content.ReadAsStringAsync(Ct));
        Assert.Matches("^[0-9]+$", Http.Header(response, "Stream-Cursor"));
        Assert.Equal(0, server.Store.UnobservedWaits(name));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_on_a_fork_is_not_woken_by_source_appends()
    {
        await using var server = await StartAsync();
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await server.CreateAsync(source, "text/plain", "abc", Ct);
        var tail = await server.CreateAsync(fork, "text/plain", null, Ct, ("Stream-Forked-From", server.Server.StreamsUrl.AbsolutePath + source));

        var poll = server.GetAsync($"{fork}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(fork, Ct);
        await server.AppendAsync(source, "text/plain", "source-only", Ct);
        server.FakeTime.Advance(LongPollTimeout);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(tail, Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal([WaitOutcome.TimedOut], server.Store.WaitOutcomes(fork));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_long_poll_on_a_fork_wakes_for_the_fork_own_appends()
    {
        await using var server = await StartAsync();
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await server.CreateAsync(source, "text/plain", "abc", Ct);
        var tail = await server.CreateAsync(fork, "text/plain", null, Ct, ("Stream-Forked-From", server.Server.StreamsUrl.AbsolutePath + source));

        var poll = server.GetAsync($"{fork}?offset={tail}&live=long-poll", Ct);
        await server.Store.WaitStartedAsync(fork, Ct);
        await server.AppendAsync(fork, "text/plain", "mine", Ct);
        using var response = await poll;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("mine", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact(Timeout = Timeout)]
    public async Task Many_long_polls_woken_by_one_append_all_receive_the_same_complete_data()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var tail = await server.CreateAsync(name, "application/json", "[{\"old\":true}]", Ct);
        const int pollers = 8;

        var polls = Enumerable.Range(0, pollers).Select(_ => server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct)).ToArray();
        for (var i = 0; i < pollers; i++)
        {
            await server.Store.WaitStartedAsync(name, Ct);
        }
        await server.AppendAsync(name, "application/json", "[{\"n\":1},{\"n\":2}]", Ct);
        var responses = await Task.WhenAll(polls);

        try
        {
            foreach (var response in responses)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("[{\"n\":1},{\"n\":2}]", await response.Content.ReadAsStringAsync(Ct));
                Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            }
        }
        finally
        {
            foreach (var response in responses)
            {
                response.Dispose();
            }
        }
    }

    [Theory(Timeout = Timeout)]
    [InlineData("application/json", "[1,2,3]", "[7,8,9]")]
    [InlineData("text/plain", "abc", "xyz")]
    public async Task A_recreated_stream_never_serves_the_previous_incarnations_data_to_a_long_poll(string contentType, string before, string after)
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, contentType, before, Ct);
        using (var first = await server.GetAsync($"{name}?offset=-1&live=long-poll", Ct))
        {
            Assert.Equal(contentType == "application/json" ? "[1,2,3]" : before, await first.Content.ReadAsStringAsync(Ct));
        }
        using (var delete = await server.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        await server.CreateAsync(name, contentType, after, Ct);

        using var second = await server.GetAsync($"{name}?offset=-1&live=long-poll", Ct);

        Assert.Equal(after, await second.Content.ReadAsStringAsync(Ct));
    }

    private static Task<ServerHarness> StartAsync() =>
        ServerHarness.StartWithFakeClockAsync(o => o.LongPollTimeout = LongPollTimeout, Ct);
}
