using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Cordon.Server.Http;

/// <summary>Request bodies larger than the server-wide JSON limit, for the endpoints that stream files and images.</summary>
public static class RequestBody
{
    /// <summary>Raises this request's body limit (Kestrel's default for every other request stays small).</summary>
    public static void AllowUpTo(HttpContext context, long limit)
    {
        var feature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            feature.MaxRequestBodySize = limit;
        }
    }
}
