package server

import (
	"net/url"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/alertmanager"
	"github.com/lunasentri/lunasentri/notify/email"
	"github.com/lunasentri/lunasentri/notify/ntfy"
	"github.com/lunasentri/lunasentri/notify/pagerduty"
	"github.com/lunasentri/lunasentri/notify/slack"
)

// The channel types of issue 15: alertmanager, slack, pagerduty, ntfy and
// email. Each package validates its own settings; this file only wires them.

// moreNotifier builds the notifier of one of the further channel types; a
// configuration its package refuses becomes a brokenChannel, so every
// delivery records why it was not sent.
func (c *channels) moreNotifier(cfg fsm.Channel) notify.Notifier {
	var (
		n   notify.Notifier
		err error
	)
	switch cfg.Type {
	case fsm.ChannelAlertmanager:
		repeat := cfg.Policy.RepeatInterval
		if repeat <= 0 {
			repeat = alertmanager.DefaultRepeatInterval
		}
		// A re-post that falls into a storm waits for its digest, at most
		// one group window: the alert must outlive that too.
		window := cfg.Policy.GroupWindow
		if window <= 0 {
			window = fsm.DefaultGroupWindow
		}
		n, err = alertmanager.New(alertmanager.Options{
			URLs: cfg.URLs, Labels: cfg.Labels, Username: cfg.Username, Password: cfg.Password,
			GeneratorURL: c.uiURL(), Validity: alertmanager.ValidityFactor*repeat + window,
			Client: c.client, Version: c.version, Logger: c.logger.Named("alertmanager").With("channel", cfg.Name),
		})
	case fsm.ChannelSlack:
		n, err = slack.New(slack.Options{URL: cfg.URL, Client: c.client, Version: c.version})
	case fsm.ChannelPagerDuty:
		n, err = pagerduty.New(pagerduty.Options{RoutingKey: cfg.RoutingKey, URL: cfg.URL, ClientURL: c.uiURL(), Client: c.client, Version: c.version})
	case fsm.ChannelNtfy:
		n, err = ntfy.New(ntfy.Options{URL: cfg.URL, Topic: cfg.Topic, Token: cfg.Token, Client: c.client, Version: c.version})
	case fsm.ChannelEmail:
		if c.smtp.Addr == "" {
			// Created on a node with SMTP settings; this one has none.
			return brokenChannel{err: email.ErrNotConfigured}
		}
		n, err = email.New(email.Options{Server: c.smtp, To: cfg.To, From: cfg.From})
	}
	if err != nil {
		return brokenChannel{err: err}
	}
	return n
}

// uiURL is this node's dashboard, the link alerts and incidents carry back.
func (c *channels) uiURL() string {
	if c.baseURL == "" {
		return ""
	}
	return c.baseURL + "/ui/"
}

// validateMoreChannel checks the further types' settings (nil for the
// others).
func validateMoreChannel(ch fsm.Channel, smtp email.Server) error {
	switch ch.Type {
	case fsm.ChannelAlertmanager:
		return alertmanager.Validate(ch.URLs, ch.Labels, ch.Username, ch.Password)
	case fsm.ChannelSlack:
		return slack.Validate(ch.URL)
	case fsm.ChannelPagerDuty:
		return pagerduty.Validate(ch.RoutingKey, ch.URL, "")
	case fsm.ChannelNtfy:
		return ntfy.Validate(ch.URL, ch.Topic, ch.Token)
	case fsm.ChannelEmail:
		if smtp.Addr == "" {
			return email.ErrNotConfigured
		}
		return email.Validate(ch.To, ch.From, smtp.From)
	}
	return nil
}

// baseURLOf is the http URL of a HOST:PORT advertise address.
func baseURLOf(hostport string) string {
	if hostport == "" {
		return ""
	}
	return (&url.URL{Scheme: "http", Host: hostport}).String()
}

// smtpServer is the email package's view of the node's SMTP settings.
func (o Options) smtpServer() email.Server {
	return email.Server{Addr: o.SMTPAddr, Username: o.SMTPUsername, Password: o.SMTPPassword, TLS: o.SMTPTLS, From: o.SMTPFrom}
}
