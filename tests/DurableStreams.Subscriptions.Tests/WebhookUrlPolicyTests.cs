using System.Net;
using DurableStreams.Server.Internal.Subscriptions;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class WebhookUrlPolicyTests
{
    private static readonly Dictionary<string, IPAddress[]> s_dns = new(StringComparer.OrdinalIgnoreCase)
    {
        ["hooks.example"] = [IPAddress.Parse("93.184.216.34")],
        ["internal.example"] = [IPAddress.Parse("10.1.2.3")],
        ["home.example"] = [IPAddress.Parse("192.168.1.20")],
        ["mixed.example"] = [IPAddress.Parse("93.184.216.34"), IPAddress.Parse("172.16.5.5")],
        ["metadata.example"] = [IPAddress.Parse("169.254.169.254")],
        ["v6local.example"] = [IPAddress.Parse("fd00::1")],
        ["mapped.example"] = [IPAddress.Parse("::ffff:10.0.0.1")],
        ["loop.example"] = [IPAddress.Loopback],
        ["localhost"] = [IPAddress.Loopback, IPAddress.IPv6Loopback],
    };

    private static Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        s_dns.TryGetValue(host, out var addresses)
            ? Task.FromResult(addresses)
            : Task.FromException<IPAddress[]>(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound));

    [Theory]
    [InlineData("https://hooks.example/hook")]
    [InlineData("https://93.184.216.34/hook")]
    [InlineData("http://localhost:8080/hook")]
    [InlineData("http://127.0.0.1:9000/hook")]
    [InlineData("http://127.0.0.42/hook")]
    [InlineData("https://localhost/hook")]
    public async Task Public_https_targets_and_the_localhost_development_exception_are_accepted(string url)
    {
        var policy = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: true);

        Assert.Null(await policy.ValidateAsync(url, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("http://10.0.0.1/hook")]                // private, and http
    [InlineData("https://10.0.0.1/hook")]               // RFC 1918
    [InlineData("https://172.16.0.1/hook")]
    [InlineData("https://192.168.0.1/hook")]
    [InlineData("https://169.254.169.254/latest")]      // cloud metadata (link-local)
    [InlineData("https://100.64.0.1/hook")]             // carrier-grade NAT
    [InlineData("https://0.0.0.0/hook")]
    [InlineData("https://127.0.0.1.nip.example/hook")]  // does not resolve here
    [InlineData("https://[::1]/hook")]                  // loopback over https is not the development exception
    [InlineData("https://[fe80::1]/hook")]
    [InlineData("https://[fd00:ec2::254]/hook")]        // unique local (AWS IPv6 metadata)
    [InlineData("https://[::ffff:192.168.1.1]/hook")]   // IPv4-mapped private
    [InlineData("https://internal.example/hook")]       // a name that resolves to a private address
    [InlineData("https://home.example/hook")]
    [InlineData("https://mixed.example/hook")]          // any private answer rejects the name
    [InlineData("https://metadata.example/hook")]
    [InlineData("https://v6local.example/hook")]
    [InlineData("https://mapped.example/hook")]
    [InlineData("https://loop.example/hook")]           // a public-looking name that resolves to loopback
    [InlineData("http://hooks.example/hook")]           // http outside the development exception
    [InlineData("http://128.0.0.1/hook")]
    [InlineData("http://127.0.1.1/hook")]               // only 127.0.0.x
    [InlineData("ftp://hooks.example/hook")]
    [InlineData("https://user:secret@hooks.example/hook")]
    [InlineData("/relative/hook")]
    public async Task Private_link_local_loopback_and_metadata_targets_are_rejected_on_the_resolved_address(string url)
    {
        var policy = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: true);

        Assert.NotNull(await policy.ValidateAsync(url, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Localhost_must_resolve_to_loopback_to_use_the_development_exception()
    {
        var rebinding = new WebhookUrlPolicy((_, _) => Task.FromResult(new[] { IPAddress.Parse("10.0.0.7") }), allowLocalhostHttp: true);

        Assert.NotNull(await rebinding.ValidateAsync("http://localhost/hook", TestContext.Current.CancellationToken));
        Assert.Empty(await rebinding.ResolveAllowedAsync("localhost", TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Without_the_development_exception_localhost_is_rejected()
    {
        var policy = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: false);

        Assert.NotNull(await policy.ValidateAsync("http://localhost:8080/hook", TestContext.Current.CancellationToken));
        Assert.NotNull(await policy.ValidateAsync("http://127.0.0.1:8080/hook", TestContext.Current.CancellationToken));
    }
}
