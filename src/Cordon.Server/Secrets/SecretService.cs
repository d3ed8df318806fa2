using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Network;
using Cordon.Server.State;

namespace Cordon.Server.Secrets;

/// <summary>Tenants' secrets: values an API key stores once and its sandboxes use without ever holding them. The
/// egress proxy puts a value into a sandbox's HTTPS request headers on the way out, only to the hosts the secret
/// allows (<see cref="SecretRecord.Hosts"/>) or a header rule of the sandbox's policy names. No read returns a
/// value.</summary>
public sealed partial class SecretService
{
    /// <summary>The most secrets one API key may hold.</summary>
    public const int MaxPerOwner = 256;

    /// <summary>The longest value: it travels in an HTTP header.</summary>
    public const int MaxValueLength = 16 * 1024;

    public const int MaxHosts = 32;

    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    private readonly StateStore _store;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Owner, string Name), SecretRecord> _secrets = [];

    public SecretService(StateStore store)
    {
        _store = store;
        foreach (var secret in store.LoadSecrets())
        {
            _secrets[(secret.Owner, secret.Name)] = secret;
        }
    }

    public SecretRecord Create(CallerIdentity caller, string name, string value, IReadOnlyList<string>? hosts, IReadOnlyDictionary<string, string>? metadata)
    {
        name = ValidName(name);
        ValidateValue(value);
        var allowed = ValidHosts(hosts);
        ValidateMetadata(metadata);
        lock (_lock)
        {
            if (_secrets.ContainsKey((caller.KeyId, name)))
            {
                throw new CordonException(ErrorCode.AlreadyExists, $"A secret named '{name}' exists already: change its value with PUT /v1/secrets/{name}, or delete it first.") { Subject = name };
            }

            if (_secrets.Keys.Count(k => k.Owner == caller.KeyId) >= MaxPerOwner)
            {
                throw new CordonException(ErrorCode.QuotaExceeded, $"This API key holds {MaxPerOwner} secrets, the most it may; delete one first.");
            }

            var now = DateTimeOffset.UtcNow;
            var secret = new SecretRecord("sec_" + RandomNumberGenerator.GetString(IdAlphabet, 20), caller.KeyId, name, value, allowed,
                metadata ?? new Dictionary<string, string>(), 1, now, now);
            _store.SaveSecret(secret);
            _store.Audit(caller.KeyId, "secret.create", name, null);
            _secrets[(caller.KeyId, name)] = secret;
            return secret;
        }
    }

    /// <summary>Changes what was given; a new value is a new version.</summary>
    public SecretRecord Update(CallerIdentity caller, string nameOrId, string? value, IReadOnlyList<string>? hosts, IReadOnlyDictionary<string, string>? metadata)
    {
        if (value is not null)
        {
            ValidateValue(value);
        }

        var allowed = hosts is null ? null : ValidHosts(hosts);
        ValidateMetadata(metadata);
        lock (_lock)
        {
            var secret = Get(caller, nameOrId);
            secret = secret with
            {
                Value = value ?? secret.Value,
                Hosts = allowed ?? secret.Hosts,
                Metadata = metadata ?? secret.Metadata,
                Version = value is null ? secret.Version : secret.Version + 1,
                UpdatedAt = DateTimeOffset.UtcNow,
            };
            _store.SaveSecret(secret);
            _store.Audit(caller.KeyId, "secret.update", secret.Name, value is null ? null : $"version {secret.Version}");
            _secrets[(secret.Owner, secret.Name)] = secret;
            return secret;
        }
    }

    /// <exception cref="CordonException">No secret of the caller's has that name or id.</exception>
    public SecretRecord Get(CallerIdentity caller, string nameOrId)
        => Find(caller.KeyId, nameOrId)
            ?? throw new CordonException(ErrorCode.SecretNotFound, $"No secret '{nameOrId}' exists for this API key; GET /v1/secrets lists them.") { Subject = nameOrId };

    /// <summary>The owner's secret of that name or id, or null.</summary>
    public SecretRecord? Find(string owner, string nameOrId)
    {
        lock (_lock)
        {
            if (_secrets.TryGetValue((owner, nameOrId.ToLowerInvariant()), out var byName))
            {
                return byName;
            }

            return nameOrId.StartsWith("sec_", StringComparison.Ordinal)
                ? _secrets.Values.FirstOrDefault(s => s.Owner == owner && s.Id == nameOrId)
                : null;
        }
    }

    /// <summary>The caller's secrets by name, a page at a time.</summary>
    /// <param name="after">The last name of the previous page, or null for the first.</param>
    public IReadOnlyList<SecretRecord> List(CallerIdentity caller, int limit, string? after)
    {
        lock (_lock)
        {
            return [.. _secrets.Values.Where(s => s.Owner == caller.KeyId && (after is null || string.CompareOrdinal(s.Name, after) > 0))
                .OrderBy(s => s.Name, StringComparer.Ordinal).Take(limit)];
        }
    }

    /// <returns>False when the caller has no such secret.</returns>
    public bool Delete(CallerIdentity caller, string nameOrId)
    {
        lock (_lock)
        {
            if (Find(caller.KeyId, nameOrId) is not { } secret)
            {
                return false;
            }

            _store.DeleteSecret(secret.Id);
            _store.Audit(caller.KeyId, "secret.delete", secret.Name, null);
            _secrets.Remove((secret.Owner, secret.Name));
            return true;
        }
    }

    /// <summary>Deletes every secret of an API key (the key is being deleted).</summary>
    public void DeleteAllOf(string owner)
    {
        lock (_lock)
        {
            foreach (var secret in _secrets.Values.Where(s => s.Owner == owner).ToList())
            {
                _store.DeleteSecret(secret.Id);
                _secrets.Remove((secret.Owner, secret.Name));
            }
        }
    }

    /// <summary>A secret name in its stored form (lower case), or a 400 that says what a name may hold.</summary>
    public static string ValidName(string? name)
        => name is not null && NameRegex().IsMatch(name) && !name.StartsWith("sec_", StringComparison.OrdinalIgnoreCase)
            ? name.ToLowerInvariant()
            : throw CordonException.Invalid($"Secret name '{name}' is not usable: 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit, and not starting with 'sec_'.");

    private static void ValidateValue(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > MaxValueLength)
        {
            throw CordonException.Invalid($"A secret's value must be 1-{MaxValueLength} characters.");
        }

        // It is put into HTTP headers: a line break would let it add headers of its own.
        if (!Network.HeaderRule.IsHeaderValue(value))
        {
            throw CordonException.Invalid("A secret's value must be printable ASCII on one line (tabs allowed): it is sent in an HTTP header.");
        }
    }

    private static string[] ValidHosts(IReadOnlyList<string>? hosts)
    {
        hosts ??= [];
        if (hosts.Count > MaxHosts)
        {
            throw CordonException.Invalid($"A secret names at most {MaxHosts} hosts.");
        }

        return [.. hosts.Select(host =>
        {
            EgressRule rule;
            try
            {
                rule = EgressRule.Parse(host);
            }
            catch (FormatException ex)
            {
                throw CordonException.Invalid("hosts: " + ex.Message);
            }

            return rule.Domain is not null && rule.AnyPort
                ? rule.ToString()
                : throw CordonException.Invalid($"hosts: '{host}' is not a host name; name one (api.example.com) or its subdomains (*.example.com), without a port — a secret goes only to HTTPS on port 443.");
        }).Distinct()];
    }

    private static void ValidateMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.Count > 32 || metadata.Any(m => m.Key.Length is 0 or > 128 || m.Value is null || m.Value.Length > 1024))
        {
            throw CordonException.Invalid("metadata holds at most 32 entries, keys of 1-128 characters and values of at most 1024.");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NameRegex();
}
