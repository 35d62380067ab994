using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DurableStreams.Testing;

/// <summary>A self-signed certificate for 127.0.0.1 (valid from yesterday to tomorrow) as PEM files, for HTTPS test servers.</summary>
public static class SelfSignedPem
{
    /// <summary>Writes <c>cert.pem</c> and <c>key.pem</c> into <paramref name="directory"/> and returns their paths.</summary>
    public static (string Certificate, string Key) Write(TempDirectory directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certificatePath = directory.Combine("cert.pem");
        var keyPath = directory.Combine("key.pem");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }
}
