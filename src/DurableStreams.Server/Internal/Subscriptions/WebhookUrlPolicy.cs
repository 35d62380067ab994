using System.Net;
using System.Net.Sockets;

namespace DurableStreams.Server.Internal.Subscriptions;

/// <summary>
/// SSRF checks for webhook URLs (§6.2, §12.8). <c>https</c> URLs must resolve only to public addresses; <c>http</c> is
/// accepted only for the development exception (<c>localhost</c> or <c>127.0.0.x</c>), which must resolve to loopback.
/// Private (RFC 1918), CGNAT, loopback, link-local (cloud metadata), multicast, unspecified, unique-local and reserved
/// targets are rejected. The check runs on resolved addresses, both when a subscription is created and again when
/// each delivery connects (so a DNS answer that changes later cannot redirect a delivery).
/// </summary>
internal sealed class WebhookUrlPolicy(Func<string, CancellationToken, Task<IPAddress[]>> resolve, bool allowLocalhostHttp)
{
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
            return "Webhook URLs must use https (http is accepted only for localhost and 127.0.0.x).";
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
        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
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

    /// <summary>The development exception: <c>localhost</c> or an IPv4 literal in 127.0.0.0/24.</summary>
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
        if (IPAddress.TryParse(host, out var address) && address.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') == 3)
        {
            var bytes = address.GetAddressBytes();
            return bytes[0] == 127 && bytes[1] == 0 && bytes[2] == 0;
        }
        return false;
    }

    /// <summary>Whether an address is a public unicast address (not local, private, link-local or reserved).</summary>
    public static bool IsPublic(IPAddress address)
    {
        address = Unmap(address);
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Broadcast))
        {
            return false;
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] == 0                                   // "this" network
                || b[0] == 10                                    // RFC 1918
                || (b[0] == 100 && (b[1] & 0xC0) == 64)          // 100.64.0.0/10 carrier-grade NAT
                || b[0] == 127                                   // loopback
                || (b[0] == 169 && b[1] == 254)                  // link-local, cloud metadata (169.254.169.254)
                || (b[0] == 172 && (b[1] & 0xF0) == 16)          // RFC 1918
                || (b[0] == 192 && b[1] == 0 && b[2] == 0)       // IETF protocol assignments
                || (b[0] == 192 && b[1] == 0 && b[2] == 2)       // TEST-NET-1
                || (b[0] == 192 && b[1] == 168)                  // RFC 1918
                || (b[0] == 198 && (b[1] & 0xFE) == 18)          // benchmarking
                || (b[0] == 198 && b[1] == 51 && b[2] == 100)    // TEST-NET-2
                || (b[0] == 203 && b[1] == 0 && b[2] == 113)     // TEST-NET-3
                || b[0] >= 224);                                 // multicast, reserved, broadcast
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var b = address.GetAddressBytes();
            return !(address.IsIPv6LinkLocal
                || address.IsIPv6SiteLocal
                || address.IsIPv6Multicast
                || (b[0] & 0xFE) == 0xFC                         // fc00::/7 unique local (incl. fd00:ec2::254 metadata)
                || (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) // documentation
                || (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B) // NAT64 (embeds IPv4)
                || address.IsIPv4MappedToIPv6);
        }
        return false;
    }

    private static IPAddress Unmap(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
