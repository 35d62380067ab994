using System.Net;
using DurableStreams.Subscriptions.Webhooks;
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

    [Theory]
    [InlineData("http://127.1:8080/hook")]
    [InlineData("http://127.0.1/hook")]
    [InlineData("http://2130706433/hook")]
    [InlineData("http://0x7f000001/hook")]
    [InlineData("http://0x7F.0.0.1/hook")]
    [InlineData("http://0177.0.0.1/hook")]
    [InlineData("http://0x7f.1/hook")]
    [InlineData("http://017700000001/hook")]
    [InlineData("http://127.000.000.001/hook")]
    [InlineData("http://127.0.0.0x2a/hook")]
    [InlineData("http://[::ffff:127.0.0.1]/hook")]
    [InlineData("http://[::ffff:7f00:1]/hook")]
    public async Task Numeric_forms_of_127_0_0_x_are_the_development_exception_only_when_it_is_allowed(string url)
    {
        var on = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: true);
        var off = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: false);
        var https = "https" + url[4..];

        Assert.Null(await on.ValidateAsync(url, TestContext.Current.CancellationToken));
        Assert.Null(await on.ValidateAsync(https, TestContext.Current.CancellationToken));
        Assert.NotNull(await off.ValidateAsync(url, TestContext.Current.CancellationToken));
        // Without the exception they are loopback, which is never public.
        Assert.NotNull(await off.ValidateAsync(https, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f000001")]
    [InlineData("0177.0.0.1")]
    [InlineData("0x7f.0.1")]
    public async Task The_policy_normalises_numeric_hosts_given_to_it_directly_as_the_connect_path_does(string host)
    {
        var on = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: true);
        var off = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: false);

        Assert.True(on.IsDevelopmentHost(host));
        Assert.False(off.IsDevelopmentHost(host));
        Assert.Equal([IPAddress.Loopback], await on.ResolveAllowedAsync(host, TestContext.Current.CancellationToken));
        Assert.Empty(await off.ResolveAllowedAsync(host, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("http://0127.0.0.1/hook")]   // octal 0127 is 87: a public address, so http is refused either way
    [InlineData("http://2130706688/hook")]   // 127.0.1.0: outside 127.0.0.x
    [InlineData("http://127.0.0.1./hook")]   // a name, not an address: not the development exception
    [InlineData("http://localhost./hook")]
    [InlineData("http://0x80000001/hook")]   // 128.0.0.1
    public async Task Numeric_forms_outside_127_0_0_x_are_not_the_development_exception(string url)
    {
        var on = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: true);

        Assert.NotNull(await on.ValidateAsync(url, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("https://2130706433/hook")]  // 127.0.0.1
    [InlineData("https://167772161/hook")]   // 10.0.0.1
    [InlineData("https://0xa9fea9fe/hook")]  // 169.254.169.254
    [InlineData("https://0300.0250.1.1/hook")] // 192.168.1.1
    [InlineData("https://10.1/hook")]        // 10.0.0.1
    public async Task Numeric_forms_of_private_addresses_are_rejected_over_https(string url)
    {
        var policy = new WebhookUrlPolicy(ResolveAsync, allowLocalhostHttp: false);

        Assert.NotNull(await policy.ValidateAsync(url, TestContext.Current.CancellationToken));
    }

    [Theory]
    // IPv4-compatible ::/96, with a private, a loopback and a public IPv4 inside
    [InlineData("::10.0.0.1", "reserved")]
    [InlineData("::127.0.0.1", "reserved")]
    [InlineData("::93.184.216.34", "reserved")]
    [InlineData("::", "reserved")]
    [InlineData("::1", "reserved")]
    [InlineData("::ffff:0:10.0.0.1", "reserved")]      // IPv4-translated (SIIT)
    // 6to4 2002::/16: 2002:AABB:CCDD:: embeds AA.BB.CC.DD
    [InlineData("2002:a00:1::1", "6to4")]              // 10.0.0.1
    [InlineData("2002:c0a8:101::1", "6to4")]           // 192.168.1.1
    [InlineData("2002:a9fe:a9fe::1", "6to4")]          // 169.254.169.254
    [InlineData("2002:5db8:d822::1", "6to4")]          // 93.184.216.34
    // Teredo 2001::/32: the client's IPv4 is the last 32 bits inverted
    [InlineData("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo")] // 10.0.0.1
    [InlineData("2001:0:a00:1::1", "Teredo")]          // server 10.0.0.1
    // NAT64
    [InlineData("64:ff9b::a00:1", "NAT64")]            // 10.0.0.1
    [InlineData("64:ff9b::7f00:1", "NAT64")]           // 127.0.0.1
    [InlineData("64:ff9b:1::a00:1", "local-use NAT64")]
    [InlineData("100::1", "discard-only")]
    [InlineData("2001:2::1", "benchmarking")]
    [InlineData("2001:10::1", "ORCHID")]
    [InlineData("2001:20::1", "ORCHIDv2")]
    [InlineData("2001:db8::1", "documentation")]
    [InlineData("3fff::1", "documentation")]
    [InlineData("5f00::1", "segment routing")]
    [InlineData("fd00:ec2::254", "unique local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("fec0::1", "site-local")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("4000::1", "outside global unicast")]
    [InlineData("192.88.99.1", "6to4 relay")]
    [InlineData("192.0.0.8", "IETF")]
    [InlineData("198.18.0.1", "benchmarking")]
    [InlineData("240.0.0.1", "reserved")]
    [InlineData("255.255.255.255", "reserved")]
    [InlineData("::ffff:10.0.0.1", "private")]         // IPv4-mapped is judged as its IPv4 address
    public void Special_purpose_and_tunnelled_ranges_are_not_public(string address, string range)
    {
        var denied = WebhookUrlPolicy.DeniedRange(IPAddress.Parse(address));

        Assert.NotNull(denied);
        Assert.Contains(range, denied, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("::ffff:93.184.216.34")]
    [InlineData("2606:2800:220:1:248:1893:25c8:1946")]
    [InlineData("2001:4860:4860::8888")]               // outside 2001::/23
    [InlineData("2003::1")]                            // next to 6to4
    [InlineData("1.1.1.1")]
    public void Public_unicast_addresses_are_public(string address) =>
        Assert.Null(WebhookUrlPolicy.DeniedRange(IPAddress.Parse(address)));

    [Theory]
    [InlineData("https://[::10.0.0.1]/hook")]
    [InlineData("https://[2002:a00:1::1]/hook")]
    [InlineData("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook")]
    [InlineData("https://tunnel.example/hook")]
    public async Task Tunnelled_addresses_are_rejected_as_literals_and_as_resolved_names(string url)
    {
        var policy = new WebhookUrlPolicy(
            (host, _) => Task.FromResult(new[] { IPAddress.Parse("2002:c0a8:101::1") }), allowLocalhostHttp: true);

        Assert.NotNull(await policy.ValidateAsync(url, TestContext.Current.CancellationToken));
        Assert.Empty(await policy.ResolveAllowedAsync(new Uri(url).IdnHost, TestContext.Current.CancellationToken));
    }
}
