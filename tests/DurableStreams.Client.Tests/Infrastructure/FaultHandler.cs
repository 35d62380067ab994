using System.Collections.Concurrent;
using System.Net;

namespace DurableStreams.Client.Tests.Infrastructure;

/// <summary>What the <see cref="FaultHandler"/> does with one request.</summary>
public enum Fault
{
    /// <summary>Forward it unchanged.</summary>
    None,
    /// <summary>Answer 503 without forwarding (the server never sees it).</summary>
    ServiceUnavailable,
    /// <summary>Forward it, let the server process it, then drop the response as a broken connection would.</summary>
    LoseResponse,
}

/// <summary>
/// Sits between the client and the real server: records every request and injects faults chosen per request by
/// <see cref="Decide"/>, which sees the request and how many earlier requests matched the same method.
/// </summary>
public sealed class FaultHandler() : DelegatingHandler(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
{
    private readonly ConcurrentQueue<(HttpMethod Method, Uri Uri, HttpStatusCode? Status)> _log = new();
    private readonly ConcurrentDictionary<HttpMethod, int> _counts = new();

    /// <summary>Chooses the fault for a request; the int is its 0-based index among requests with the same method.</summary>
    public Func<HttpRequestMessage, int, Fault> Decide { get; set; } = static (_, _) => Fault.None;

    /// <summary>Extra header on injected 503s (e.g. Retry-After), or null.</summary>
    public string? RetryAfterSeconds { get; set; }

    /// <summary>Awaited before a request is forwarded (after <see cref="Decide"/>), so a test can hold one back; none by default.</summary>
    public Func<HttpRequestMessage, Task>? BeforeForwardAsync { get; set; }

    /// <summary>Called with each forwarded request and the server's response before the client sees it; none by default.</summary>
    public Action<HttpRequestMessage, HttpResponseMessage>? AfterResponse { get; set; }

    public IReadOnlyList<(HttpMethod Method, Uri Uri, HttpStatusCode? Status)> Requests => [.. _log];

    public int Count(HttpMethod method) => Requests.Count(r => r.Method == method);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var index = _counts.AddOrUpdate(request.Method, 0, static (_, n) => n + 1);
        var fault = Decide(request, index);
        if (fault == Fault.ServiceUnavailable)
        {
            _log.Enqueue((request.Method, request.RequestUri!, HttpStatusCode.ServiceUnavailable));
            var injected = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)
            {
                RequestMessage = request,
                Content = new StringContent("Injected outage."),
            };
            if (RetryAfterSeconds is not null)
            {
                injected.Headers.TryAddWithoutValidation("Retry-After", RetryAfterSeconds);
            }
            return injected;
        }
        if (BeforeForwardAsync is { } beforeForward)
        {
            await beforeForward(request);
        }
        var response = await base.SendAsync(request, cancellationToken);
        _log.Enqueue((request.Method, request.RequestUri!, response.StatusCode));
        AfterResponse?.Invoke(request, response);
        if (fault == Fault.LoseResponse)
        {
            // The server has already answered (status and headers are here), so the request was processed.
            response.Dispose();
            throw new HttpRequestException("Injected: connection lost after the server processed the request.");
        }
        return response;
    }
}
