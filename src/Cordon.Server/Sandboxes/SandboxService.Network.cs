using System.Net;
using System.Security.Cryptography;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Network;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>What sandboxes' traffic may reach: the policy at create, changes while they run, and what the server's
/// resolver and proxy ask of it.</summary>
public sealed partial class SandboxService
{
    /// <summary>The policy of a sandbox created without one (<see cref="CordonOptions.DefaultNetwork"/>).</summary>
    public EgressPolicy DefaultNetwork => _options.DefaultNetwork == "none" ? EgressPolicy.None : EgressPolicy.OpenInternet;

    /// <summary>Told when a running sandbox's policy changed (its address, its new policy): the proxy closes the
    /// connections it forbids.</summary>
    public event Action<IPAddress, EgressPolicy>? NetworkChanged;

    /// <summary>Parses a policy from an interface's words, as a 400 naming the bad rule when it is malformed.</summary>
    /// <param name="internet">Reach the public internet by default; the server's default when null.</param>
    /// <param name="headers">Headers to set on HTTPS requests, by host (values may name secrets).</param>
    public EgressPolicy ParseNetwork(bool? internet, IReadOnlyList<string>? allowOut, IReadOnlyList<string>? denyOut,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? headers = null)
    {
        try
        {
            return EgressPolicy.Parse(internet ?? DefaultNetwork.Internet, allowOut, denyOut, headers);
        }
        catch (FormatException ex)
        {
            throw CordonException.Invalid(ex.Message);
        }
    }

    /// <summary>Replaces what a running sandbox's traffic may reach; connections the new policy forbids are closed.</summary>
    /// <param name="via">The interface that asked (for the history).</param>
    public async Task<Sandbox> SetNetworkAsync(CallerIdentity caller, string id, EgressPolicy policy, string? via, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (record.State is not (SandboxState.Running or SandboxState.Paused))
            {
                throw NotLive(record);
            }

            // The sandbox's secrets are its own, not the policy's: a new policy keeps them.
            policy = policy with { Secrets = record.Network.Secrets };
            RequireNetworkFor(policy);
            RequireSecretsFor(record.Owner, policy);
            // The kernel's counters restart with the new rules: what the old ones refused is counted first.
            await CountKernelRefusalsAsync(record, cancellationToken);
            await RuntimeCallAsync(() => _runtime.SetNetworkAsync(record.Id, policy.ToRuntime(), cancellationToken));
            lock (record.KernelRefusals)
            {
                record.KernelRefusals.Clear();
            }

            record.Network = policy;
            _store.SaveSandbox(record, "network", $"Network policy changed{(via is null ? "" : " through " + via)}: {Describe(policy)}.",
                caller.KeyId, "sandbox.network", Describe(policy));
            if (_runtime.AddressOf(record.Id) is { } address)
            {
                try
                {
                    NetworkChanged?.Invoke(address, policy);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // The policy is in force for new connections; a proxied one that could not be cut is logged.
                    LogCutFailed(record.Id, ex.Message);
                }
            }

            return record.ToView();
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>The policy of the running sandbox at <paramref name="address"/>, or null when no running sandbox
    /// has it (the resolver and the proxy then refuse).</summary>
    public EgressPolicy? EgressPolicyAt(IPAddress address)
        => _runtime.SandboxAt(address) is { } id && _live.TryGetValue(id, out var record) && record.State == SandboxState.Running
            ? record.Network
            : null;

    /// <summary>What the proxy does to the HTTPS requests of the running sandbox at <paramref name="address"/> to
    /// <paramref name="host"/>: put in the values of its secrets that may go there, set its header rule's headers.
    /// Null when nothing is to be done (the connection then passes unopened). Values are read now, so a changed or
    /// deleted secret counts from the next connection.</summary>
    public Interception? InterceptionAt(IPAddress address, string host)
    {
        if (_runtime.SandboxAt(address) is not { } id || !_live.TryGetValue(id, out var record) || record.State != SandboxState.Running
            || record.Network is not { Intercepts: true } policy)
        {
            return null;
        }

        List<(string Placeholder, string Value)> substitutions = [.. policy.Secrets
            .Select(b => (b.Placeholder, Secret: _secrets.Find(record.Owner, b.Secret)))
            .Where(s => s.Secret is not null && s.Secret.AllowsHost(host))
            .Select(s => (s.Placeholder, s.Secret!.Value))];
        var rule = policy.HeadersFor(host);
        if (rule is null)
        {
            return substitutions.Count == 0 ? null : new Interception([], substitutions);
        }

        var (headers, missing) = rule.Resolve(name => _secrets.Find(record.Owner, name) is { } s && (s.Hosts.Count == 0 || s.AllowsHost(host)) ? s.Value : null);
        return headers is not null
            ? new Interception(headers, substitutions)
            : new Interception([], substitutions,
                $"the header rule for '{rule.Host}' names secret '{missing}', which does not exist or may not be sent to {host}; create it (POST /v1/secrets) or add {host} to its hosts");
    }

    /// <summary>The secrets a create asks for, each with a fresh placeholder: the caller's own, with hosts to go to.</summary>
    private List<SecretBinding> BindSecrets(CallerIdentity caller, IReadOnlyDictionary<string, string>? secrets, IReadOnlyDictionary<string, string>? env)
    {
        var bindings = new List<SecretBinding>();
        if (secrets is null)
        {
            return bindings;
        }

        Require(secrets.Count <= 32, "secrets may name at most 32 secrets.");
        foreach (var (variable, name) in secrets)
        {
            Require(EnvNameRegex().IsMatch(variable), $"secrets: '{variable}' is not a valid variable name (letters, digits and '_', not starting with a digit).");
            Require(env?.ContainsKey(variable) != true, $"secrets: '{variable}' is also in env; give the secret's placeholder a variable of its own.");
            var secret = _secrets.Find(caller.KeyId, name ?? "")
                ?? throw CordonException.Invalid($"secrets: no secret '{name}' exists for this API key; create it with POST /v1/secrets (name, value, hosts).");
            Require(secret.Hosts.Count > 0,
                $"secrets: secret '{secret.Name}' names no hosts, so its placeholder would never be filled in; give it hosts (PUT /v1/secrets/{secret.Name}) or use it in a header rule of the network policy.");
            bindings.Add(new SecretBinding(variable, secret.Name, $"cordon-secret-{secret.Name}-{RandomNumberGenerator.GetString(IdAlphabet, 24)}"));
        }

        return bindings;
    }

    /// <summary>Every secret a header rule names exists for the owner (a missing one would refuse its requests).</summary>
    private void RequireSecretsFor(string owner, EgressPolicy policy)
    {
        foreach (var rule in policy.Headers)
        {
            foreach (var name in rule.SecretNames)
            {
                Require(_secrets.Find(owner, name) is not null,
                    $"network: the header rule for '{rule.Host}' names secret '{name}', which does not exist for this API key; create it with POST /v1/secrets first.");
            }
        }
    }

    /// <summary>Counts a connection the policy refused, and writes it to the sandbox's events (at most one a second:
    /// a loop of refused connections must not flood its history).</summary>
    public void RecordRefusal(IPAddress address, string what)
    {
        if (_runtime.SandboxAt(address) is not { } id || !_live.TryGetValue(id, out var record))
        {
            return;
        }

        Interlocked.Increment(ref record.NetworkRefused);
        var now = DateTime.UtcNow.Ticks;
        var last = Interlocked.Read(ref record.LastRefusalEventTicks);
        if (now - last >= TimeSpan.TicksPerSecond && Interlocked.CompareExchange(ref record.LastRefusalEventTicks, now, last) == last)
        {
            _store.AddEvent(id, "network.refused", "Refused by the network policy: " + what);
        }

        LogRefused(id, what);
    }

    /// <summary>Counts what the kernel refused to the sandbox since the last look, with an event per refusing rule
    /// (read when its metrics or events are asked for, or its policy changes: nothing is polled).</summary>
    private async Task CountKernelRefusalsAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        if (!_runtime.HasNetwork)
        {
            return;
        }

        var counters = await _runtime.NetworkRefusalsAsync(record.Id, cancellationToken);
        lock (record.KernelRefusals)
        {
            foreach (var (why, packets) in counters)
            {
                var seen = record.KernelRefusals.GetValueOrDefault(why);
                if (packets > seen)
                {
                    Interlocked.Add(ref record.NetworkRefused, packets - seen);
                    _store.AddEvent(record.Id, "network.refused", $"Refused by the network policy: {packets - seen} packet(s), {why}.");
                }

                record.KernelRefusals[why] = packets;
            }
        }
    }

    /// <summary>A policy that reaches anything needs the host to give sandboxes a network.</summary>
    private void RequireNetworkFor(EgressPolicy policy)
    {
        if (policy.Online && !_runtime.HasNetwork)
        {
            throw new CordonException(ErrorCode.NetworkUnavailable,
                "This server gives sandboxes no network (GET /health says why); create the sandbox with network 'none', or ask the operator to fix the host.");
        }
    }

    private static string Describe(EgressPolicy policy)
    {
        var parts = new List<string> { policy.Internet ? "internet" : "no internet" };
        if (policy.Allow.Count > 0)
        {
            parts.Add("allow " + string.Join(", ", policy.AllowText));
        }

        if (policy.Deny.Count > 0)
        {
            parts.Add("deny " + string.Join(", ", policy.DenyText));
        }

        if (policy.Headers.Count > 0)
        {
            parts.Add("headers set for " + string.Join(", ", policy.Headers.Select(h => h.Host.ToString())));
        }

        if (policy.Secrets.Count > 0)
        {
            parts.Add("secrets " + string.Join(", ", policy.Secrets.Select(b => $"{b.Secret} (in {b.Env})")));
        }

        return string.Join("; ", parts);
    }

    [LoggerMessage(EventId = 2302, Level = LogLevel.Warning, Message = "Sandbox {Id}: closing its proxied connections after a policy change failed: {Detail}")]
    private partial void LogCutFailed(string id, string detail);

    [LoggerMessage(EventId = 2301, Level = LogLevel.Debug, Message = "Sandbox {Id}: refused {What}")]
    private partial void LogRefused(string id, string what);
}
