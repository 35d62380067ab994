using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DurableStreams.Subscriptions.Webhooks;
using NSec.Cryptography;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed partial class WebhookSignerTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>RFC 8032 §7.1 TEST 1: the secret key and its public key.</summary>
    private const string Rfc8032Secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    private const string Rfc8032Public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    [Fact]
    public void A_signature_verifies_with_an_independent_Ed25519_implementation_using_the_JWKS_key()
    {
        var signer = WebhookSigner.FromStates([], Now, out var created);
        var body = Encoding.UTF8.GetBytes("{\"subscription_id\":\"s\",\"streams\":[]}");

        var header = signer.SignatureHeader(1_767_225_600, body);
        var match = SignatureHeaderPattern().Match(header);
        Assert.True(created);
        Assert.True(match.Success, header);
        Assert.Equal(signer.ActiveKid, match.Groups["kid"].Value);

        var jwk = SingleJwk(signer.JwksJson());
        Assert.Equal("OKP", jwk.GetProperty("kty").GetString());
        Assert.Equal("Ed25519", jwk.GetProperty("crv").GetString());
        Assert.Equal("EdDSA", jwk.GetProperty("alg").GetString());
        Assert.Equal("sig", jwk.GetProperty("use").GetString());
        Assert.Equal(signer.ActiveKid, jwk.GetProperty("kid").GetString());

        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, Base64Url.DecodeFromChars(jwk.GetProperty("x").GetString()), KeyBlobFormat.RawPublicKey);
        var signed = Encoding.UTF8.GetBytes("1767225600.").Concat(body).ToArray();
        var signature = Base64Url.DecodeFromChars(match.Groups["sig"].Value);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(publicKey, signed, signature));

        // Any change to the timestamp or the body breaks it.
        Assert.False(SignatureAlgorithm.Ed25519.Verify(publicKey, Encoding.UTF8.GetBytes("1767225601.").Concat(body).ToArray(), signature));
        body[^2] ^= 1;
        Assert.False(SignatureAlgorithm.Ed25519.Verify(publicKey, Encoding.UTF8.GetBytes("1767225600.").Concat(body).ToArray(), signature));
    }

    [Fact]
    public void The_public_key_and_kid_come_from_the_key_material_as_in_RFC_8032_and_RFC_7638()
    {
        var state = new SigningKeyState
        {
            Kid = "ignored",
            PrivateKey = Base64Url.EncodeToString(Convert.FromHexString(Rfc8032Secret)),
            PublicKey = Base64Url.EncodeToString(Convert.FromHexString(Rfc8032Public)),
            CreatedAt = Now,
        };
        state.Kid = WebhookSigner.KidFor(Convert.FromHexString(Rfc8032Public));
        var signer = WebhookSigner.FromStates([state], Now, out var created);
        var body = "hello"u8.ToArray();

        var header = signer.SignatureHeader(42, body);

        Assert.False(created);
        // The key NSec derives from the RFC's secret is the RFC's public key, and it verifies our signature.
        using var key = Key.Import(SignatureAlgorithm.Ed25519, Convert.FromHexString(Rfc8032Secret), KeyBlobFormat.RawPrivateKey);
        Assert.Equal(Rfc8032Public, Convert.ToHexStringLower(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
        var signature = Base64Url.DecodeFromChars(SignatureHeaderPattern().Match(header).Groups["sig"].Value);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(key.PublicKey, "42.hello"u8, signature));
        // Ed25519 is deterministic: NSec's own signature over the same message is byte-identical.
        Assert.Equal(SignatureAlgorithm.Ed25519.Sign(key, "42.hello"u8), signature);
        // kid = "ds_" + base64url(SHA-256 of the RFC 7638 canonical JWK), stable for the key.
        var thumbprint = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(
            "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" + Base64Url.EncodeToString(Convert.FromHexString(Rfc8032Public)) + "\"}"));
        Assert.Equal("ds_" + Base64Url.EncodeToString(thumbprint), signer.ActiveKid);
    }

    [Fact]
    public void After_a_rotation_the_new_key_signs_and_the_old_one_stays_published_until_it_retires()
    {
        var signer = WebhookSigner.FromStates([], Now, out _);
        var oldKid = signer.ActiveKid;

        signer.Rotate(Now, TimeSpan.FromHours(1));
        var kids = JsonDocument.Parse(signer.JwksJson()).RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToArray();
        var reloadedLater = WebhookSigner.FromStates(signer.States, Now.AddHours(2), out var created);

        Assert.NotEqual(oldKid, signer.ActiveKid);
        Assert.Equal([oldKid, signer.ActiveKid], kids);
        Assert.False(created);
        Assert.Equal([signer.ActiveKid], reloadedLater.States.Select(s => s.Kid));
    }

    [Fact]
    public void Tokens_verify_only_unchanged_and_carry_subscription_generation_and_wake()
    {
        var signer = WebhookSigner.FromStates([], Now, out _);
        var other = WebhookSigner.FromStates([], Now, out _);

        var token = signer.CreateToken("sub-1", 7, "w_abc");
        var claims = signer.ReadToken(token);

        Assert.NotNull(claims);
        Assert.Equal(("sub-1", 7L, "w_abc"), (claims.Sub, claims.Gen, claims.Wid));
        Assert.Null(other.ReadToken(token));
        Assert.Null(signer.ReadToken(token[..^2] + (token[^2] == 'A' ? "B" : "A") + token[^1]));
        Assert.Null(signer.ReadToken("not-a-token"));
        Assert.Null(signer.ReadToken(""));
    }

    private static JsonElement SingleJwk(byte[] jwks) => Assert.Single(JsonDocument.Parse(jwks).RootElement.GetProperty("keys").EnumerateArray().ToArray());

    [GeneratedRegex("^t=(?<t>\\d+),kid=(?<kid>[^,]+),ed25519=(?<sig>[A-Za-z0-9_-]+)$")]
    private static partial Regex SignatureHeaderPattern();
}
