using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Subscriptions;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace DurableStreams.Subscriptions.Webhooks;

/// <summary>
/// Ed25519 webhook signing (§7.1), the JWKS (§6.5) and callback/claim tokens (§12.9). The last key signs; older keys
/// stay published until their <see cref="SigningKeyState.RetireAfter"/>. Tokens are HMAC-SHA256 over a small JSON
/// payload with a key derived from the signing key, so they survive restarts with it and need no second secret.
/// </summary>
internal sealed class WebhookSigner
{
    private const string TokenKeyLabel = "durable-streams callback token v1";
    private readonly List<Key> _keys;

    private WebhookSigner(List<Key> keys) => _keys = keys;

    public string ActiveKid => _keys[^1].State.Kid;

    public IReadOnlyList<SigningKeyState> States => _keys.Select(k => k.State).ToArray();

    /// <summary>Signers for stored keys; a new key when there is none.</summary>
    public static WebhookSigner FromStates(IReadOnlyList<SigningKeyState> states, DateTimeOffset now, out bool created)
    {
        var keys = states.Where(s => s.RetireAfter is null || s.RetireAfter > now).Select(Key.FromState).ToList();
        created = keys.Count == 0 || keys[^1].State.RetireAfter is not null;
        if (created)
        {
            keys.Add(Key.FromState(NewKeyState(now)));
        }
        return new WebhookSigner(keys);
    }

    /// <summary>Adds a new active key; the previous ones stay published for <paramref name="publishOldKeysFor"/>.</summary>
    public void Rotate(DateTimeOffset now, TimeSpan publishOldKeysFor)
    {
        foreach (var key in _keys)
        {
            key.State.RetireAfter ??= now + publishOldKeysFor;
        }
        _keys.Add(Key.FromState(NewKeyState(now)));
    }

    /// <summary>A fresh Ed25519 key with its <c>kid</c> derived from the public key.</summary>
    public static SigningKeyState NewKeyState(DateTimeOffset now)
    {
        var seed = RandomNumberGenerator.GetBytes(Ed25519PrivateKeyParameters.KeySize);
        var publicKey = new Ed25519PrivateKeyParameters(seed, 0).GeneratePublicKey().GetEncoded();
        return new SigningKeyState
        {
            Kid = KidFor(publicKey),
            PrivateKey = Base64Url.EncodeToString(seed),
            PublicKey = Base64Url.EncodeToString(publicKey),
            CreatedAt = now,
        };
    }

    /// <summary><c>ds_</c> plus the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.</summary>
    public static string KidFor(ReadOnlySpan<byte> publicKey)
    {
        var canonical = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" + Base64Url.EncodeToString(publicKey) + "\"}";
        return "ds_" + Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>The <c>Webhook-Signature</c> value: <c>t=…,kid=…,ed25519=…</c> over <c>&lt;t&gt;.&lt;body&gt;</c>.</summary>
    public string SignatureHeader(long unixSeconds, ReadOnlySpan<byte> body)
    {
        var key = _keys[^1];
        var prefix = Encoding.ASCII.GetBytes(unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        var signer = new Ed25519Signer();
        signer.Init(forSigning: true, key.Private);
        signer.BlockUpdate(message, 0, message.Length);
        var signature = signer.GenerateSignature();
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"t={unixSeconds},kid={key.State.Kid},ed25519={Base64Url.EncodeToString(signature)}");
    }

    /// <summary>The JWK Set of every published key.</summary>
    public byte[] JwksJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("keys");
            foreach (var key in _keys)
            {
                writer.WriteStartObject();
                writer.WriteString("kty", "OKP");
                writer.WriteString("crv", "Ed25519");
                writer.WriteString("kid", key.State.Kid);
                writer.WriteString("use", "sig");
                writer.WriteString("alg", "EdDSA");
                writer.WriteString("x", key.State.PublicKey);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>A token for one wake of one subscription (callback or claim token).</summary>
    public string CreateToken(string subscriptionId, long generation, string wakeId)
    {
        var key = _keys[^1];
        var payload = JsonSerializer.SerializeToUtf8Bytes(new TokenPayload(subscriptionId, generation, wakeId, key.State.Kid));
        var encoded = Base64Url.EncodeToString(payload);
        return encoded + "." + Base64Url.EncodeToString(HMACSHA256.HashData(key.TokenKey, Encoding.ASCII.GetBytes(encoded)));
    }

    /// <summary>The token's claims when its MAC verifies with a published key; null otherwise.</summary>
    public TokenPayload? ReadToken(string token)
    {
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == token.Length - 1)
        {
            return null;
        }
        try
        {
            var encoded = token[..dot];
            var payload = JsonSerializer.Deserialize<TokenPayload>(Base64Url.DecodeFromChars(encoded));
            if (payload is null || _keys.Find(k => k.State.Kid == payload.Kid) is not { } key)
            {
                return null;
            }
            var expected = HMACSHA256.HashData(key.TokenKey, Encoding.ASCII.GetBytes(encoded));
            var actual = Base64Url.DecodeFromChars(token.AsSpan(dot + 1));
            return CryptographicOperations.FixedTimeEquals(expected, actual) ? payload : null;
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Claims of a callback or claim token.</summary>
    internal sealed record TokenPayload(string Sub, long Gen, string Wid, string Kid);

    private sealed record Key(SigningKeyState State, Ed25519PrivateKeyParameters Private, byte[] TokenKey)
    {
        public static Key FromState(SigningKeyState state)
        {
            var seed = Base64Url.DecodeFromChars(state.PrivateKey);
            return new Key(state, new Ed25519PrivateKeyParameters(seed, 0), HMACSHA256.HashData(seed, Encoding.ASCII.GetBytes(TokenKeyLabel)));
        }
    }
}
