using System.Text;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>A client-facing error: status and one short plain-text sentence, never a stack trace.</summary>
internal readonly record struct HttpError(int StatusCode, string Message)
{
    public static HttpError BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = StatusCode;
        if (HttpMethods.IsHead(response.HttpContext.Request.Method) || StatusCode == StatusCodes.Status304NotModified)
        {
            return Task.CompletedTask;
        }
        response.ContentType = "text/plain; charset=utf-8";
        var bytes = Encoding.UTF8.GetBytes(Message + "\n");
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }
}
