using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// A real shared cache in front of the server (issue 22 item 12): Debian's nginx with <c>proxy_cache</c>, which honours
/// Cache-Control and Vary but ignores Authorization, as many shared caches do. With tokens configured, nothing an
/// authorised reader fetched through the proxy may then be served to an anonymous one. nginx listens on a unix socket
/// in the test's directory and runs as the current user; without nginx the test skips, except under CI=true.
/// </summary>
public sealed class CachingProxyTests : IDisposable
{
    private const string ReadToken = "proxy-reader";
    private const string WriteToken = "proxy-writer";

    private readonly TempDirectory _directory = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task With_tokens_an_anonymous_read_through_a_caching_proxy_never_gets_what_an_authorised_read_fetched()
    {
        var nginx = FindNginx();
        await using var guarded = await StartServerAsync(CachePolicy.Auto);
        await using var openlyCached = await StartServerAsync(CachePolicy.Public);
        using var proxy = await NginxProxy.StartAsync(nginx, _directory, guarded.Server.BaseUrl, openlyCached.Server.BaseUrl, Ct);
        using var client = proxy.CreateClient();
        var name = ServerHarness.NewName("secret");
        await guarded.CreateAsync(name, "text/plain", "secret data", Ct, ("Authorization", "Bearer " + WriteToken));
        await openlyCached.CreateAsync(name, "text/plain", "secret data", Ct, ("Authorization", "Bearer " + WriteToken));

        foreach (var (prefix, leaks) in new[] { ("/guarded", false), ("/public", true) })
        {
            using var authorised = new HttpRequestMessage(HttpMethod.Get, $"{prefix}/v1/stream/{name}?offset=-1");
            authorised.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ReadToken);
            using var first = await client.SendAsync(authorised, Ct);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("secret data", await first.Content.ReadAsStringAsync(Ct));

            using var anonymous = await client.GetAsync($"{prefix}/v1/stream/{name}?offset=-1", Ct);
            var body = await anonymous.Content.ReadAsStringAsync(Ct);
            if (leaks)
            {
                // The control: the proxy does cache, so CachePolicy.Public with tokens is only for caches that authorise.
                Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
                Assert.Equal("secret data", body);
            }
            else
            {
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
                Assert.DoesNotContain("secret data", body, StringComparison.Ordinal);
            }
        }
    }

    private static Task<ServerHarness> StartServerAsync(CachePolicy policy) => ServerHarness.StartAsync(o =>
    {
        o.ReadTokens.Add(ReadToken);
        o.WriteTokens.Add(WriteToken);
        o.CachePolicy = policy;
    }, cancellationToken: Ct);

    /// <summary>Debian's nginx, or any on PATH; skips without one unless CI=true.</summary>
    private static string FindNginx()
    {
        var candidates = new List<string> { "/usr/sbin/nginx" };
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(dir => Path.Combine(dir, "nginx")));
        if (candidates.FirstOrDefault(File.Exists) is { } found)
        {
            return found;
        }
        const string Missing = "nginx is not installed (apt-get install nginx); the caching proxy test needs it.";
        Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase), Missing + " CI=true requires it.");
        Assert.Skip(Missing);
        return string.Empty;
    }

    /// <summary>
    /// nginx with <c>proxy_cache</c> on a unix socket: <c>/guarded/…</c> goes to one server and <c>/public/…</c> to another.
    /// Everything (config, pid, logs, temp and cache directories) lives in the test's directory.
    /// </summary>
    private sealed class NginxProxy : IDisposable
    {
        private readonly Process _process;
        private readonly string _socket;

        private NginxProxy(Process process, string socket)
        {
            _process = process;
            _socket = socket;
        }

        public static async Task<NginxProxy> StartAsync(string nginx, TempDirectory directory, Uri guarded, Uri openlyCached, CancellationToken cancellationToken)
        {
            var root = directory.Combine("nginx");
            Directory.CreateDirectory(root);
            var socket = Path.Combine(root, "proxy.sock");
            var user = Environment.UserName == "root" ? "user root;\n" : string.Empty;
            var config = string.Create(CultureInfo.InvariantCulture, $$"""
                {{user}}worker_processes 1;
                error_log {{root}}/error.log warn;
                events { worker_connections 64; }
                http {
                    access_log off;
                    client_body_temp_path {{root}}/client_body;
                    proxy_temp_path {{root}}/proxy_temp;
                    fastcgi_temp_path {{root}}/fastcgi_temp;
                    uwsgi_temp_path {{root}}/uwsgi_temp;
                    scgi_temp_path {{root}}/scgi_temp;
                    proxy_cache_path {{root}}/cache levels=1:2 keys_zone=streams:1m;
                    server {
                        listen unix:{{socket}};
                        proxy_cache streams;
                        proxy_http_version 1.1;
                        location /guarded/ { proxy_pass http://127.0.0.1:{{guarded.Port}}/; }
                        location /public/ { proxy_pass http://127.0.0.1:{{openlyCached.Port}}/; }
                    }
                }
                """);
            var configPath = Path.Combine(root, "nginx.conf");
            await File.WriteAllTextAsync(configPath, config, cancellationToken);

            using var watcher = new FileSystemWatcher(root, "proxy.sock") { EnableRaisingEvents = true };
            var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            watcher.Created += (_, _) => listening.TrySetResult();
            var start = new ProcessStartInfo(nginx)
            {
                ArgumentList = { "-p", root, "-e", Path.Combine(root, "error.log"), "-c", configPath, "-g", $"daemon off; pid {root}/nginx.pid;" },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            var process = Process.Start(start) ?? throw new InvalidOperationException("nginx did not start.");
            process.EnableRaisingEvents = true;
            process.Exited += (_, _) =>
            {
                if (!listening.Task.IsCompleted)
                {
                    listening.TrySetException(new InvalidOperationException($"nginx exited with {process.ExitCode} before listening: {ReadLog(root)}"));
                }
            };
            if (File.Exists(socket))
            {
                listening.TrySetResult();
            }
            var proxy = new NginxProxy(process, socket);
            try
            {
                await listening.Task.WaitAsync(TimeSpan.FromSeconds(15), cancellationToken);
            }
            catch
            {
                proxy.Dispose();
                throw;
            }
            return proxy;
        }

        private static string ReadLog(string root)
        {
            try
            {
                return File.ReadAllText(Path.Combine(root, "error.log"));
            }
            catch (IOException ex)
            {
                return ex.Message;
            }
        }

        /// <summary>An HttpClient whose every connection goes to the proxy's unix socket.</summary>
        public HttpClient CreateClient() => new(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socket), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = new Uri("http://proxy.invalid/"),
            Timeout = ServerHarness.RequestTimeout,
        };

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                // Only the master process this test started (by its id); it stops its own workers.
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
            _process.Dispose();
        }
    }
}
