using System.Net;
using System.Net.Sockets;

namespace DurableStreams.Subscriptions.Webhooks;

/// <summary>
/// SSRF checks for webhook URLs (§6.2, §12.8). <c>https</c> URLs must resolve only to public addresses; <c>http</c> is
/// accepted only for the development exception (<c>localhost</c> or <c>127.0.0.x</c>, when allowed), which must resolve
/// to loopback. Public means: not in any range of <see cref="DeniedRanges"/> (the IANA special-purpose registries plus
/// every IPv6 tunnel or translation form that embeds an IPv4 address) and, for IPv6, inside 2000::/3, the only block
/// IANA allocates for global unicast. The check runs on resolved addresses, both when a subscription is created and
/// again when each delivery connects (so a DNS answer that changes later cannot redirect a delivery). Host names are
/// judged as <see cref="Uri"/> parses them, which is what the HTTP client connects to: numeric IPv4 forms such as
/// <c>127.1</c>, <c>2130706433</c>, <c>0x7f000001</c> and <c>0177.0.0.1</c> are the address they denote.
/// </summary>
internal sealed class WebhookUrlPolicy(Func<string, CancellationToken, Task<IPAddress[]>> resolve, bool allowLocalhostHttp)
{
    /// <summary>Ranges no webhook may target, with what each is; an IPv4-mapped IPv6 address is judged as its IPv4 address.</summary>
    internal static readonly IReadOnlyList<(IPNetwork Network, string Name)> DeniedRanges =
    [
        (IPNetwork.Parse("0.0.0.0/8"), "\"this\" network"),
        (IPNetwork.Parse("10.0.0.0/8"), "private (RFC 1918)"),
        (IPNetwork.Parse("100.64.0.0/10"), "carrier-grade NAT"),
        (IPNetwork.Parse("127.0.0.0/8"), "loopback"),
        (IPNetwork.Parse("169.254.0.0/16"), "link-local (cloud metadata)"),
        (IPNetwork.Parse("172.16.0.0/12"), "private (RFC 1918)"),
        (IPNetwork.Parse("192.0.0.0/24"), "IETF protocol assignments"),
        (IPNetwork.Parse("192.0.2.0/24"), "documentation (TEST-NET-1)"),
        (IPNetwork.Parse("192.88.99.0/24"), "6to4 relay anycast (deprecated)"),
        (IPNetwork.Parse("192.168.0.0/16"), "private (RFC 1918)"),
        (IPNetwork.Parse("198.18.0.0/15"), "benchmarking"),
        (IPNetwork.Parse("198.51.100.0/24"), "documentation (TEST-NET-2)"),
        (IPNetwork.Parse("203.0.113.0/24"), "documentation (TEST-NET-3)"),
        (IPNetwork.Parse("224.0.0.0/4"), "multicast"),
        (IPNetwork.Parse("240.0.0.0/4"), "reserved, broadcast"),
        (IPNetwork.Parse("::/8"), "reserved: unspecified, loopback, IPv4-compatible ::/96, IPv4-translated"),
        (IPNetwork.Parse("64:ff9b::/96"), "NAT64 (embeds IPv4)"),
        (IPNetwork.Parse("64:ff9b:1::/48"), "local-use NAT64 (embeds IPv4)"),
        (IPNetwork.Parse("100::/64"), "discard-only"),
        (IPNetwork.Parse("2001::/23"), "IETF protocol assignments"),
        (IPNetwork.Parse("2001::/32"), "Teredo (embeds IPv4)"),
        (IPNetwork.Parse("2001:2::/48"), "benchmarking"),
        (IPNetwork.Parse("2001:10::/28"), "ORCHID (deprecated)"),
        (IPNetwork.Parse("2001:20::/28"), "ORCHIDv2"),
        (IPNetwork.Parse("2001:db8::/32"), "documentation"),
        (IPNetwork.Parse("2002::/16"), "6to4 (embeds IPv4)"),
        (IPNetwork.Parse("3fff::/20"), "documentation"),
        (IPNetwork.Parse("5f00::/16"), "segment routing (SRv6) SIDs"),
        (IPNetwork.Parse("fc00::/7"), "unique local (incl. fd00:ec2::254 metadata)"),
        (IPNetwork.Parse("fe80::/10"), "link-local"),
        (IPNetwork.Parse("fec0::/10"), "site-local (deprecated)"),
        (IPNetwork.Parse("ff00::/8"), "multicast"),
    ];

    private static readonly IPNetwork s_globalUnicast = IPNetwork.Parse("2000::/3");
    private static readonly IPNetwork s_developmentRange = IPNetwork.Parse("127.0.0.0/24");

    /// <summary>Null when the URL may receive webhooks, otherwise why not.</summary>
    public async Task<string?> ValidateAsync(string url, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            return "The webhook URL must be an absolute https URL.";
        }
        if (uri.UserInfo.Length > 0)
        {
            return "The webhook URL must not carry credentials.";
        }
        var development = IsDevelopmentHost(uri.IdnHost);
        if (uri.Scheme == Uri.UriSchemeHttp && !development)
        {
            return allowLocalhostHttp
                ? "Webhook URLs must use https (http is accepted only for localhost and 127.0.0.x)."
                : "Webhook URLs must use https (http to localhost is accepted only when the server allows local webhooks).";
        }
        var addresses = await ResolveAllowedAsync(uri.IdnHost, cancellationToken);
        return addresses.Length == 0 ? "The webhook host resolves to a private, loopback, link-local or otherwise local address." : null;
    }

    /// <summary>
    /// The addresses a delivery may connect to for <paramref name="host"/>: all of them when every resolved address is
    /// allowed, none when any is not (or when the name does not resolve).
    /// </summary>
    public async Task<IPAddress[]> ResolveAllowedAsync(string host, CancellationToken cancellationToken)
    {
        var development = IsDevelopmentHost(host);
        IPAddress[] addresses;
        if (ParseLiteral(host) is { } literal)
        {
            addresses = [literal];
        }
        else
        {
            try
            {
                addresses = await resolve(host, cancellationToken);
            }
            catch (SocketException)
            {
                return [];
            }
        }
        if (addresses.Length == 0)
        {
            return [];
        }
        foreach (var address in addresses)
        {
            var allowed = development ? IPAddress.IsLoopback(Unmap(address)) : IsPublic(address);
            if (!allowed)
            {
                return [];
            }
        }
        return addresses;
    }

    /// <summary>The development exception (when allowed): <c>localhost</c> or an IPv4 address in 127.0.0.0/24, in any numeric form.</summary>
    public bool IsDevelopmentHost(string host)
    {
        if (!allowLocalhostHttp)
        {
            return false;
        }
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return ParseLiteral(host) is { } address && s_developmentRange.Contains(Unmap(address));
    }

    /// <summary>Whether an address is a public unicast address (not local, private, link-local, tunnelled or reserved).</summary>
    public static bool IsPublic(IPAddress address) => DeniedRange(address) is null;

    /// <summary>What makes <paramref name="address"/> non-public, or null when it is public.</summary>
    public static string? DeniedRange(IPAddress address)
    {
        address = Unmap(address);
        if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            return "not an IP address";
        }
        string? denied = null;
        var longest = -1;
        foreach (var (network, name) in DeniedRanges)
        {
            // The most specific range names the address (Teredo rather than the 2001::/23 block around it).
            if (network.PrefixLength > longest && network.Contains(address))
            {
                (denied, longest) = (name, network.PrefixLength);
            }
        }
        if (denied is not null)
        {
            return denied;
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && !s_globalUnicast.Contains(address))
        {
            return "outside global unicast 2000::/3";
        }
        return null;
    }

    /// <summary>
    /// An IP literal host (IPv6 with or without brackets; IPv4 in every numeric form <see cref="Uri"/> and
    /// <see cref="IPAddress"/> accept, normalised to the address), or null for a name.
    /// </summary>
    private static IPAddress? ParseLiteral(string host)
    {
        var text = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return IPAddress.TryParse(text, out var address) ? address : null;
    }

    private static IPAddress Unmap(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
