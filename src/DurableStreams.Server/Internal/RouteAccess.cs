using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace DurableStreams.Server.Internal;

/// <summary>What a request under the streams mount addresses: a stream, or one route of the <c>__ds</c> control API.</summary>
internal enum RouteKind
{
    /// <summary>A stream (any name outside <c>__ds</c>).</summary>
    Stream,

    /// <summary><c>__ds/jwks.json</c>.</summary>
    Jwks,

    /// <summary><c>__ds/subscriptions/{id}</c>.</summary>
    Subscription,

    /// <summary><c>__ds/subscriptions/{id}/streams</c>.</summary>
    SubscriptionStreams,

    /// <summary><c>__ds/subscriptions/{id}/streams/{path}</c>.</summary>
    SubscriptionStream,

    /// <summary><c>__ds/subscriptions/{id}/callback</c>.</summary>
    Callback,

    /// <summary><c>__ds/subscriptions/{id}/ack</c>.</summary>
    Ack,

    /// <summary><c>__ds/subscriptions/{id}/release</c>.</summary>
    Release,

    /// <summary><c>__ds/subscriptions/{id}/claim</c>.</summary>
    Claim,

    /// <summary><c>__ds/compact/{path}</c>: on-demand State-Protocol compaction of the stream at path (issue 18).</summary>
    Compact,

    /// <summary>Any other path under <c>__ds</c>.</summary>
    Unknown,
}

/// <summary>The credentials a request needs.</summary>
internal enum Access
{
    /// <summary>A read or write token (GET, HEAD).</summary>
    Read,

    /// <summary>A write token.</summary>
    Write,

    /// <summary>An admin token (admin routes such as <c>POST __ds/compact/{stream}</c>).</summary>
    Admin,

    /// <summary>None of the server's tokens: the route is public (the JWKS) or checks its own subscription-scoped token.</summary>
    OwnCredentials,
}

/// <summary>
/// A parsed request path: its kind, the canonical stream name (for <see cref="RouteKind.Stream"/>) and, for subscription
/// routes, the decoded subscription id and stream path. The one parse both the auth table and the control API use.
/// </summary>
internal readonly record struct StreamRoute(RouteKind Kind, string Name, string SubscriptionId = "", string StreamPath = "")
{
    /// <summary>
    /// Parses the raw request target (<see cref="IHttpRequestFeature.RawTarget"/>, still percent-encoded, so every name
    /// is decoded exactly once) below the mount (<paramref name="mountPrefix"/>, from <see cref="MountPrefix"/>). A
    /// stream name is one decoded string in which an encoded <c>/</c> is refused; under <c>__ds</c> each literal segment
    /// is decoded on its own (a subscription's stream path may be one <c>%2F</c>-encoded segment).
    /// </summary>
    public static StreamName.PathProblem Parse(HttpContext context, string mountPrefix, out StreamRoute route)
    {
        route = default;
        var request = context.Request;
        var raw = RawPath(context);
        var prefix = request.PathBase.HasValue ? request.PathBase.ToUriComponent() + mountPrefix : mountPrefix;
        if (!raw.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            // The router matched the decoded, dot-normalised path; the raw one spells the mount differently.
            return raw.Length + 1 == prefix.Length && prefix.AsSpan().StartsWith(raw, StringComparison.OrdinalIgnoreCase)
                ? Done(out route, new StreamRoute(RouteKind.Stream, string.Empty))
                : StreamName.PathProblem.NotUnderMount;
        }
        var rest = raw[prefix.Length..];
        var firstSlash = rest.IndexOf('/');
        var first = firstSlash < 0 ? rest : rest[..firstSlash];
        var problem = StreamName.Decode(first, allowEncodedSlash: true, out var firstSegment);
        if (problem != StreamName.PathProblem.None || firstSegment != StreamName.ReservedSegment)
        {
            problem = StreamName.Decode(rest, allowEncodedSlash: false, out var name);
            return problem != StreamName.PathProblem.None ? problem : Done(out route, new StreamRoute(RouteKind.Stream, name));
        }
        var segments = new List<string>();
        var remaining = firstSlash < 0 ? ReadOnlySpan<char>.Empty : rest[(firstSlash + 1)..];
        if (firstSlash >= 0)
        {
            foreach (var range in remaining.Split('/'))
            {
                problem = StreamName.Decode(remaining[range], allowEncodedSlash: true, out var segment);
                if (problem != StreamName.PathProblem.None)
                {
                    return problem;
                }
                segments.Add(segment);
            }
        }
        var full = segments.Count == 0 ? StreamName.ReservedSegment : StreamName.ReservedSegment + "/" + string.Join('/', segments);
        return Done(out route, Control(full, segments));
    }

    private static StreamName.PathProblem Done(out StreamRoute route, StreamRoute value)
    {
        route = value;
        return StreamName.PathProblem.None;
    }

    /// <summary>The control route named by the decoded segments after <c>__ds</c>.</summary>
    private static StreamRoute Control(string full, List<string> segments)
    {
        if (segments is ["jwks.json"])
        {
            return new(RouteKind.Jwks, full);
        }
        if (segments.Count >= 2 && segments[0] == "compact")
        {
            return new(RouteKind.Compact, full, StreamPath: string.Join('/', segments.Skip(1)));
        }
        if (segments.Count < 2 || segments[0] != "subscriptions")
        {
            return new(RouteKind.Unknown, full);
        }
        var id = segments[1];
        if (segments.Count == 2)
        {
            return new(RouteKind.Subscription, full, id);
        }
        var kind = segments[2] switch
        {
            "streams" when segments.Count > 3 => RouteKind.SubscriptionStream,
            _ when segments.Count > 3 => RouteKind.Unknown,
            "streams" => RouteKind.SubscriptionStreams,
            "callback" => RouteKind.Callback,
            "ack" => RouteKind.Ack,
            "release" => RouteKind.Release,
            "claim" => RouteKind.Claim,
            _ => RouteKind.Unknown,
        };
        var path = kind == RouteKind.SubscriptionStream ? string.Join('/', segments.Skip(3)) : string.Empty;
        return new(kind, full, id, path);
    }

    /// <summary>
    /// The request's path as the client sent it (percent-encoded, without the query). Kestrel keeps it as
    /// <see cref="IHttpRequestFeature.RawTarget"/>; an absolute-form target is reduced to its path; a host without a raw
    /// target gets the re-encoded decoded path.
    /// </summary>
    private static ReadOnlySpan<char> RawPath(HttpContext context)
    {
        var target = (context.Features.Get<IHttpRequestFeature>()?.RawTarget).AsSpan();
        if (!target.IsEmpty && target[0] != '/')
        {
            var scheme = target.IndexOf("://", StringComparison.Ordinal);
            var path = scheme < 0 ? -1 : target[(scheme + 3)..].IndexOf('/');
            target = path < 0 ? default : target[(scheme + 3 + path)..];
        }
        if (target.IsEmpty)
        {
            target = (context.Request.PathBase + context.Request.Path).ToUriComponent();
        }
        var query = target.IndexOf('?');
        return query < 0 ? target : target[..query];
    }

    /// <summary>The raw-path prefix of a mount: <c>/v1/stream</c> → <c>/v1/stream/</c>, percent-encoded as sent.</summary>
    public static string MountPrefix(string mount) => new PathString("/" + mount.Trim('/')).ToUriComponent() + "/";
}

/// <summary>
/// The one table deciding which credentials a request needs, by its exact method and route (issue 22 item 1). Only
/// <c>GET/HEAD __ds/jwks.json</c> (public: receivers verify signatures with it) and
/// <c>POST __ds/subscriptions/{id}/callback|ack|release</c> (authorised by the subscription-scoped token the server
/// issued with the wake, checked by the subscription engine) carry their own credentials, and only while subscriptions
/// are enabled; <c>POST __ds/compact/{stream}</c> needs an admin token; every other request, streams and control routes
/// alike, needs a read token for GET/HEAD and a write token otherwise (an admin token grants both). CORS preflight (OPTIONS) is answered before this table and needs none.
/// </summary>
internal static class RouteAccess
{
    /// <summary>The credentials <paramref name="method"/> on <paramref name="kind"/> needs.</summary>
    public static Access Required(RouteKind kind, string method, bool subscriptionsEnabled) => (kind, method) switch
    {
        (RouteKind.Jwks, "GET" or "HEAD") when subscriptionsEnabled => Access.OwnCredentials,
        (RouteKind.Callback or RouteKind.Ack or RouteKind.Release, "POST") when subscriptionsEnabled => Access.OwnCredentials,
        (RouteKind.Compact, "POST") => Access.Admin,
        (_, "GET" or "HEAD") => Access.Read,
        _ => Access.Write,
    };
}
