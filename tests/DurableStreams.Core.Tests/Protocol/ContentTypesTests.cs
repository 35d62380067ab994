using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class ContentTypesTests
{
    [Theory]
    [InlineData("text/plain", "text/plain")]
    [InlineData("TEXT/Plain", "text/plain")]
    [InlineData("application/json; charset=utf-8", "application/json")]
    [InlineData("  Application/JSON ;charset=UTF-8", "application/json")]
    [InlineData("application/vnd.api+json", "application/vnd.api+json")]
    [InlineData("image/png", "image/png")]
    public void MediaType_drops_parameters_and_lower_cases(string contentType, string expected)
    {
        Assert.Equal(expected, ContentTypes.MediaType(contentType));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("text")]
    [InlineData("/plain")]
    [InlineData("text/")]
    [InlineData("text/plain/extra")]
    [InlineData("text /plain")]
    [InlineData("text/pl ain")]
    [InlineData("text/pl\"ain")]
    [InlineData("text/plain,application/json")]
    [InlineData("te(x)t/plain")]
    [InlineData("text/pläin")]
    [InlineData(";charset=utf-8")]
    public void MediaType_is_null_for_values_that_are_not_a_type_and_subtype(string? contentType)
    {
        Assert.Null(ContentTypes.MediaType(contentType));
    }

    [Theory]
    [InlineData("text/plain", "TEXT/PLAIN")]
    [InlineData("text/plain", "text/plain; charset=utf-8")]
    [InlineData("application/json;charset=utf-8", "Application/Json")]
    public void Matches_ignores_case_and_parameters(string a, string b)
    {
        Assert.True(ContentTypes.Matches(a, b));
        Assert.True(ContentTypes.Matches(b, a));
    }

    [Theory]
    [InlineData("text/plain", "text/html")]
    [InlineData("application/json", "application/octet-stream")]
    [InlineData("application/json", "application/jsonx")]
    public void Matches_is_false_for_different_media_types(string a, string b)
    {
        Assert.False(ContentTypes.Matches(a, b));
    }

    [Fact]
    public void Matches_is_false_for_two_malformed_values()
    {
        Assert.False(ContentTypes.Matches("garbage", "text/plain"));
    }

    [Theory]
    [InlineData("application/json", true)]
    [InlineData("APPLICATION/JSON; charset=utf-8", true)]
    [InlineData("application/vnd.api+json", false)]
    [InlineData("text/json", false)]
    [InlineData("application/octet-stream", false)]
    [InlineData("text/plain", false)]
    public void IsJson_is_true_only_for_application_json(string contentType, bool expected)
    {
        Assert.Equal(expected, ContentTypes.IsJson(contentType));
    }

    [Theory]
    [InlineData("text/plain", true)]
    [InlineData("text/html; charset=utf-8", true)]
    [InlineData("Text/CSV", true)]
    [InlineData("application/json", true)]
    [InlineData("application/octet-stream", false)]
    [InlineData("image/png", false)]
    [InlineData("application/x-ndjson", false)]
    [InlineData("garbage", false)]
    public void IsSseText_covers_text_types_and_json(string contentType, bool expected)
    {
        Assert.Equal(expected, ContentTypes.IsSseText(contentType));
    }

    [Fact]
    public void The_default_content_type_is_octet_stream()
    {
        Assert.Equal("application/octet-stream", ContentTypes.Default);
    }
}
