using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using DurableStreams.Server;
using DurableStreams.Core;
using DurableStreams.Storage.Postgres;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>An unreachable PostgreSQL answers 503 with Retry-After, promptly, and the node recovers when it returns.</summary>
public sealed class UnavailableTests(PostgresServer server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Opening_a_store_on_a_dead_port_fails_fast_as_unavailable()
    {
        server.SkipIfUnavailable();
        await using var proxy = new TcpProxy(server.Port);
        proxy.Cut();
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAsync<StoreUnavailableException>(() => PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={proxy.Port};Username=postgres;Timeout=2",
            Schema = server.NewSchema(),
        }, Ct));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Requests_get_503_with_Retry_After_while_the_database_is_unreachable_and_succeed_again_after()
    {
        server.SkipIfUnavailable();
        await using var proxy = new TcpProxy(server.Port);
        await using var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={proxy.Port};Username=postgres;Timeout=2;Command Timeout=5",
            Schema = server.NewSchema(),
            CrossNodeNotifications = false,
        }, Ct);
        await using var host = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store });
        await host.StartAsync(Ct);
        using var client = new HttpClient { BaseAddress = host.StreamsUrl, Timeout = TimeSpan.FromSeconds(30) };
        using (var created = await client.PutAsync("s", new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue("text/plain") } }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        proxy.Cut();
        var clock = Stopwatch.StartNew();
        using (var append = await client.PostAsync("s", new StringContent("x", null, "text/plain"), Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, append.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), append.Headers.RetryAfter?.Delta);
        }
        using (var read = await client.GetAsync("s?offset=-1", Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");

        proxy.Restore();
        HttpStatusCode status;
        var deadline = Stopwatch.StartNew();
        do
        {
            using var append = await client.PostAsync("s", new StringContent("y", null, "text/plain"), Ct);
            status = append.StatusCode;
        }
        while (status == HttpStatusCode.ServiceUnavailable && deadline.Elapsed < TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.NoContent, status);
        using var after = await client.GetAsync("s?offset=-1", Ct);
        Assert.Equal("y", await after.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>
    /// A host that turned read-only (a standby, or a demoted primary after a failover) refuses writes with SQLSTATE
    /// 25006: that is the database being unavailable for writes (503, retry elsewhere), not a server bug (500).
    /// </summary>
    [Fact]
    public async Task Appends_to_a_read_only_database_get_503_with_Retry_After_and_reads_still_work()
    {
        server.SkipIfUnavailable();
        var database = $"readonly_{Environment.ProcessId}_{Guid.NewGuid():N}";
        await AdminAsync($"CREATE DATABASE {database}");
        try
        {
            await using (var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
            {
                ConnectionString = server.ConnectionStringFor(database),
                Schema = server.NewSchema(),
                CrossNodeNotifications = false,
            }, Ct))
            {
                await using var host = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store });
                await host.StartAsync(Ct);
                using var client = new HttpClient { BaseAddress = host.StreamsUrl, Timeout = TimeSpan.FromSeconds(30) };
                using (var created = await client.PutAsync("s", new StringContent("a", null, "text/plain"), Ct))
                {
                    Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                }

                // New sessions on the database are read-only; the pool's open ones are cut, so every connection is new.
                await AdminAsync($"ALTER DATABASE {database} SET default_transaction_read_only = on");
                await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'");
                for (var i = 0; i < 3; i++)
                {
                    using var append = await client.PostAsync("s", new StringContent("x", null, "text/plain"), Ct);
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, append.StatusCode);
                    Assert.Equal(TimeSpan.FromSeconds(1), append.Headers.RetryAfter?.Delta);
                }
                using (var read = await client.GetAsync("s?offset=-1", Ct))
                {
                    Assert.Equal(HttpStatusCode.OK, read.StatusCode);
                    Assert.Equal("a", await read.Content.ReadAsStringAsync(Ct));
                }

                await AdminAsync($"ALTER DATABASE {database} RESET default_transaction_read_only");
                await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'");
                HttpStatusCode status;
                var attempts = 0;
                do
                {
                    // The first append may meet a connection cut above (503); a fresh one writes.
                    using var append = await client.PostAsync("s", new StringContent("y", null, "text/plain"), Ct);
                    status = append.StatusCode;
                }
                while (status == HttpStatusCode.ServiceUnavailable && ++attempts < 5);
                Assert.Equal(HttpStatusCode.NoContent, status);
            }
        }
        finally
        {
            await AdminAsync($"DROP DATABASE {database} WITH (FORCE)");
        }
    }

    private async Task AdminAsync(string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(server.ConnectionString + ";Pooling=false");
        await connection.OpenAsync(Ct);
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }
}
