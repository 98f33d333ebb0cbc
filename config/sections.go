package config

// The small sections: where sysban keeps its state and its control
// socket, its metrics endpoint, its nftables table and its logging. Each
// declares its keys beside the function that reads them.

// nftKeys are the keys of the nft section, read by decodeNFT.
var nftKeys = []string{"table", "priority"}

func (d *decoder) decodeNFT(root map[string]any) NFT {
	m := d.section(root, "nft")
	d.checkKeys("nft", m, nftKeys)
	n := NFT{Table: d.str(m, "nft.table")}
	if !nameRE.MatchString(n.Table) {
		d.fail("nft.table", "%q: want lower-case letters, digits, '-' or '_', at most 32", n.Table)
	}
	n.Priority = d.intRange(m, "nft.priority", -400, 400)
	return n
}

// stateKeys are the keys of the state section, read by decodeState.
var stateKeys = []string{"dir", "dbpurgeage"}

func (d *decoder) decodeState(root map[string]any) State {
	m := d.section(root, "state")
	d.checkKeys("state", m, stateKeys)
	return State{Dir: d.absPath(m, "state.dir"), PurgeAge: d.duration(m, "state.dbpurgeage", false)}
}

// controlKeys are the keys of the control section, read by decodeControl.
var controlKeys = []string{"socket"}

func (d *decoder) decodeControl(root map[string]any) Control {
	m := d.section(root, "control")
	d.checkKeys("control", m, controlKeys)
	return Control{Socket: d.absPath(m, "control.socket")}
}

// metricsKeys are the keys of the metrics section, read by decodeMetrics.
var metricsKeys = []string{"listen"}

func (d *decoder) decodeMetrics(root map[string]any) Metrics {
	m := d.section(root, "metrics")
	d.checkKeys("metrics", m, metricsKeys)
	var mt Metrics
	if l := d.str(m, "metrics.listen"); l != "" && l != "off" {
		mt.Listen = d.hostPort("metrics.listen", l)
	}
	return mt
}

// logKeys are the keys of the log section, read by decodeLog.
var logKeys = []string{"level", "format"}

func (d *decoder) decodeLog(root map[string]any) Log {
	m := d.section(root, "log")
	d.checkKeys("log", m, logKeys)
	return Log{
		Level:  d.oneOf(m, "log.level", "debug", "info", "warn", "error"),
		Format: d.oneOf(m, "log.format", "text", "json"),
	}
}
