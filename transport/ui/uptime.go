package ui

import (
	"fmt"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// uptimeBar is one window's bar: a row of cells drawn as inline SVG by the
// template (so html/template escapes every title).
type uptimeBar struct {
	Window    string // "24h", "7d", "30d"
	Label     string // "Last 24 hours"
	Percent   string
	Downtime  string
	Incidents int
	NoData    bool
	Cells     []uptimeCell
	Width     int // viewBox width
	CellW     int
	From, To  string
}

type uptimeCell struct {
	X, W  int
	Class string
	Title string
}

// Bar geometry in viewBox units: the gap is a fifth of a cell or less, so
// 24 cells and 168 cells both read as one bar.
func cellGeometry(n int) (w, gap int) {
	if n > 60 {
		return 4, 1
	}
	return 10, 2
}

// uptimeBars draws 24h (one cell an hour), 7d (one an hour) and 30d (one a
// day), the cells aligned to whole UTC hours or days; the totals are over
// exactly the window, as GET /v1/machines/{name}/uptime counts them.
func uptimeBars(segs []fsm.Segment, now time.Time) []uptimeBar {
	now = now.UTC()
	return []uptimeBar{
		bar("24h", "Last 24 hours", "24 hours ago", segs, now, 24*time.Hour, time.Hour, 24),
		bar("7d", "Last 7 days", "7 days ago", segs, now, 7*24*time.Hour, time.Hour, 7*24),
		bar("30d", "Last 30 days", "30 days ago", segs, now, 30*24*time.Hour, 24*time.Hour, 30),
	}
}

func bar(window, label, from string, segs []fsm.Segment, now time.Time, span, step time.Duration, n int) uptimeBar {
	total := fsm.UptimeIn(segs, now.Add(-span), now)
	b := uptimeBar{
		Window: window, Label: label, Percent: percent(total.Ratio()),
		Downtime: human(total.Down), Incidents: total.Incidents, NoData: total.Monitored() == 0,
	}
	cellW, cellGap := cellGeometry(n)
	b.CellW, b.Width = cellW, n*(cellW+cellGap)-cellGap
	first := now.Truncate(step).Add(-time.Duration(n-1) * step)
	b.From, b.To = from, "now"
	for i, c := range fsm.UptimeCells(segs, first, step, n) {
		from := first.Add(time.Duration(i) * step)
		cell := uptimeCell{X: i * (cellW + cellGap), W: cellW}
		span := from.Format("Mon 2 Jan 15:04") + "–" + from.Add(step).Format("15:04") + " UTC"
		if step >= 24*time.Hour {
			span = from.Format("Mon 2 Jan") + " UTC"
		}
		switch {
		case c.Monitored() == 0:
			cell.Class, cell.Title = "nodata", span+": no data"
		case c.Down == 0:
			cell.Class, cell.Title = "up", span+": 100% up"
		case c.Up == 0:
			cell.Class, cell.Title = "down", fmt.Sprintf("%s: down %s", span, human(c.Down))
		default:
			cell.Class, cell.Title = "partial", fmt.Sprintf("%s: %s up, down %s", span, percent(c.Ratio()), human(c.Down))
		}
		b.Cells = append(b.Cells, cell)
	}
	return b
}
