"""QueueLab (`ferrymq lab`): named scenarios run against FerryMQ (queue mode over AMQP, log mode over
the Kafka protocol) and any RabbitMQ or Kafka-protocol broker, with faults injected on a timeline,
leaving a self-contained HTML report and its JSON.

The pieces, by what they hold:
  scenario   the TOML files (built-ins in ``scenarios/``) and their validation
  params     a driver's parameters, checked against its dataclass
  body       the lab's message body: id and send time, so every receipt is accounted for
  recorder   one ``Series`` per line on the charts: counters, latency, gauges, events, the ledger
  targets    where a scenario runs: lab-started brokers (restartable for faults) or URLs
  faults     the fault grammar and the scheduler that applies faults and marks the timeline
  worker     a consumer in a process of its own (so it can be killed or stopped)
  drivers/   one module per scenario kind: ``Params``, ``run(ctx, params)``, ``explain(result)``
  runner     a scenario over its targets; report: the JSON and the HTML page
  command    the command line
"""
