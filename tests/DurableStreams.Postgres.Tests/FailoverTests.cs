using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>Two <c>serve --postgres</c> processes; one is killed with SIGKILL while a producer appends through it.</summary>
public sealed class FailoverTests(PostgresServer server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Killing_a_node_mid_appends_loses_and_duplicates_nothing_when_the_producer_retries_through_another()
    {
        server.SkipIfUnavailable();
        var connection = server.ConnectionString;
        await using var a = await NodeProcess.StartAsync(connection, Ct);
        await using var b = await NodeProcess.StartAsync(connection, Ct);
        using var clientA = new HttpClient { BaseAddress = a.StreamsUrl, Timeout = TimeSpan.FromSeconds(20) };
        using var clientB = new HttpClient { BaseAddress = b.StreamsUrl, Timeout = TimeSpan.FromSeconds(20) };
        var name = "failover-" + Guid.NewGuid().ToString("N");
        using (var created = await clientA.PutAsync(name, new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue("text/plain") } }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        const int count = 300;
        var current = clientA;
        Task? kill = null;
        var failovers = 0;
        var expected = new StringBuilder();
        for (var seq = 0; seq < count; seq++)
        {
            var body = seq.ToString(CultureInfo.InvariantCulture) + ";";
            expected.Append(body);
            if (seq == count / 3)
            {
                // Mid-appends: the kill races the requests that follow.
                kill = Task.Run(a.KillAsync, Ct);
            }
            while (true)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, name) { Content = new StringContent(body, Encoding.UTF8, "text/plain") };
                request.Headers.Add(ProtocolHeaders.ProducerId, "p");
                request.Headers.Add(ProtocolHeaders.ProducerEpoch, "0");
                request.Headers.Add(ProtocolHeaders.ProducerSeq, seq.ToString(CultureInfo.InvariantCulture));
                try
                {
                    using var response = await current.SendAsync(request, Ct);
                    if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.NoContent)
                    {
                        break;
                    }
                    Assert.True((int)response.StatusCode >= 500, $"seq {seq}: {(int)response.StatusCode}");
                }
                catch (HttpRequestException)
                {
                    // The node died with this request in flight: retry the same (epoch, seq) through the other node.
                }
                Assert.Same(clientA, current);
                current = clientB;
                failovers++;
            }
        }
        await kill!;

        using var read = await clientB.GetAsync($"{name}?offset=-1", Ct);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(expected.ToString(), await read.Content.ReadAsStringAsync(Ct));
        Assert.Equal(1, failovers);
    }
}
