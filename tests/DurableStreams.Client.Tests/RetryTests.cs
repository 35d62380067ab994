using System.Net;
using DurableStreams.Client.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Idempotent operations are retried on injected 503s and lost responses; plain appends never are.</summary>
public sealed class RetryTests : IAsyncLifetime
{
    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    private FaultHandler Faults => _harness.Faults;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    [Fact]
    public async Task A_read_succeeds_after_two_injected_503s()
    {
        var name = await CreateAsync("data");
        Faults.Decide = (request, index) => request.Method == HttpMethod.Get && index < 2 ? Fault.ServiceUnavailable : Fault.None;

        var chunks = await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal("data", DurableStreamClientTests.Text(chunks));
        Assert.Equal(
            [HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.OK],
            Faults.Requests.Where(r => r.Method == HttpMethod.Get).Select(r => r.Status));
    }

    [Fact]
    public async Task Retry_After_is_honoured_and_HEAD_and_DELETE_are_retried_too()
    {
        var name = await CreateAsync("data");
        Faults.RetryAfterSeconds = "0";
        Faults.Decide = (request, index) => request.Method != HttpMethod.Put && index == 0 ? Fault.ServiceUnavailable : Fault.None;

        var meta = await Client.GetMetadataAsync(name, Ct);
        await Client.DeleteAsync(name, Ct);

        Assert.Equal("0000000000000000_0000000000000004", meta.NextOffset);
        Assert.Equal(2, Faults.Count(HttpMethod.Head));
        Assert.Equal(2, Faults.Count(HttpMethod.Delete));
    }

    [Fact]
    public async Task A_lost_response_to_a_read_is_retried()
    {
        var name = await CreateAsync("data");
        Faults.Decide = (request, index) => request.Method == HttpMethod.Get && index == 0 ? Fault.LoseResponse : Fault.None;

        var chunks = await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal("data", DurableStreamClientTests.Text(chunks));
        Assert.Equal(2, Faults.Count(HttpMethod.Get));
    }

    [Fact]
    public async Task Retries_stop_after_MaxAttempts_with_Unavailable()
    {
        var name = await CreateAsync("data");
        Faults.Decide = (request, _) => request.Method == HttpMethod.Get ? Fault.ServiceUnavailable : Fault.None;

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct).AsTask());

        Assert.Equal(DurableStreamErrorCode.Unavailable, error.ErrorCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.StatusCode);
        Assert.EndsWith(" failed: 503 Service Unavailable: Injected outage.", error.Message, StringComparison.Ordinal);
        Assert.Equal(ClientHarness.FastRetry.MaxAttempts, Faults.Count(HttpMethod.Get));
    }

    [Fact]
    public async Task A_plain_append_is_not_retried_on_503()
    {
        var name = await CreateAsync("");
        Faults.Decide = (request, _) => request.Method == HttpMethod.Post ? Fault.ServiceUnavailable : Fault.None;

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => Client.AppendAsync(name, "x", "text/plain", cancellationToken: Ct));

        Assert.Equal(DurableStreamErrorCode.Unavailable, error.ErrorCode);
        Assert.Equal(1, Faults.Count(HttpMethod.Post));
    }

    [Fact]
    public async Task A_plain_append_whose_response_is_lost_is_not_resent_so_the_data_appears_once()
    {
        var name = await CreateAsync("");
        Faults.Decide = (request, index) => request.Method == HttpMethod.Post && index == 0 ? Fault.LoseResponse : Fault.None;

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => Client.AppendAsync(name, "once", "text/plain", cancellationToken: Ct));

        Assert.Equal(DurableStreamErrorCode.Unavailable, error.ErrorCode);
        Assert.Null(error.StatusCode);
        Assert.Equal(1, Faults.Count(HttpMethod.Post));
        Assert.Equal("once", DurableStreamClientTests.Text(await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)));
    }

    [Fact]
    public async Task With_RetryPolicy_None_a_read_is_tried_once()
    {
        var name = await CreateAsync("data");
        Faults.Decide = (request, _) => request.Method == HttpMethod.Get ? Fault.ServiceUnavailable : Fault.None;
        using var client = new DurableStreamClient(new HttpClient(Faults, disposeHandler: false), Client.Options with { Retry = RetryPolicy.None });

        await Assert.ThrowsAsync<DurableStreamException>(() => client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct).AsTask());

        Assert.Equal(1, Faults.Count(HttpMethod.Get));
    }

    private async Task<string> CreateAsync(string body)
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = System.Text.Encoding.UTF8.GetBytes(body) }, Ct);
        return name;
    }
}
