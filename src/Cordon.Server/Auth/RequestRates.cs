using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Cordon.Server.Auth;

/// <summary>Each tenant key's request rate (<see cref="KeyQuotas.RequestsPerSecond"/>): a token bucket per key that
/// holds ten seconds' worth, so bursts pass and a steady flood is refused with how long to wait. Admin keys are not
/// limited. One bucket per key that has called, which is bounded by the keys an admin made.</summary>
public sealed class RequestRates(ApiKeyService keys) : IDisposable
{
    private readonly ConcurrentDictionary<string, (int Rate, TokenBucketRateLimiter Bucket)> _buckets = new(StringComparer.Ordinal);

    /// <summary>Takes one request from <paramref name="keyId"/>'s bucket: null when it may go on, else the seconds
    /// to wait before it may.</summary>
    public int? Refusal(string keyId)
    {
        if (keys.QuotasOf(keyId)?.RequestsPerSecond is not { } rate)
        {
            return null;
        }

        var entry = _buckets.AddOrUpdate(
            keyId,
            _ => (rate, NewBucket(rate)),
            (_, old) =>
            {
                if (old.Rate == rate)
                {
                    return old;
                }

                old.Bucket.Dispose(); // the key's quota changed
                return (rate, NewBucket(rate));
            });
        using var lease = entry.Bucket.AttemptAcquire();
        if (lease.IsAcquired)
        {
            return null;
        }

        return lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
    }

    private static TokenBucketRateLimiter NewBucket(int rate) => new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = rate * 10,
        TokensPerPeriod = rate,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        AutoReplenishment = true,
        QueueLimit = 0,
    });

    public void Dispose()
    {
        foreach (var (_, entry) in _buckets)
        {
            entry.Bucket.Dispose();
        }
    }
}
