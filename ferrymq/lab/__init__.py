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
  proxy      the TCP proxy between clients and broker: network delay, loss and cuts
  disk       a small tmpfs for the broker's data: the disk-full fault
  faulty_serve  ``ferrymq serve`` whose fsyncs fail on demand: the fsync-error fault
  amqp, kafka   the real clients the drivers use (aio-pika, aiokafka), keeping the ledger
  live       progress in the terminal and on the dashboard's Lab page
  advise     the workload advisor (``ferrymq lab advise``)
  drivers/   one module per scenario kind: ``Params``, ``run(ctx, params)``, ``explain(result)``
  runner     a scenario over its targets; report: the JSON and the HTML page
  command    the command line
"""
